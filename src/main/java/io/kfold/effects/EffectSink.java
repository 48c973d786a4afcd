package io.kfold.effects;

import io.vertx.core.Future;

/** Runs one kind of side effect for one change. */
interface EffectSink {

  /**
   * Runs the effect. A failure with {@link PermanentFailure} is dead-lettered at once; any other
   * failure is retried.
   */
  Future<Void> deliver(Change change);

  default Future<Void> close() {
    return Future.succeededFuture();
  }

  /** A failure that retrying cannot cure, such as a 4xx answer or an e-mail without a recipient. */
  final class PermanentFailure extends RuntimeException {
    PermanentFailure(String message) {
      super(message);
    }
  }
}
