package io.kfold.effects;

import io.vertx.core.Future;

/**
 * Runs one kind of side effect for one change: a built-in kind, which reads the change record and
 * its template context, or an application's {@link io.kfold.entity.EffectSink} ({@link PluggedSink}).
 */
interface EffectSink {

  /**
   * Runs the effect. A failure with {@link io.kfold.entity.EffectSink.PermanentFailure} is
   * dead-lettered at once; any other failure is retried.
   */
  Future<Void> deliver(Change change);

  default Future<Void> close() {
    return Future.succeededFuture();
  }
}
