package io.kfold.entity;

import io.vertx.core.Future;

/**
 * Your own side effect: a worker of {@code kind: sink} hands it each change of its entities. The
 * worker does the rest as for its built-in kinds: one change of an entity at a time and in order,
 * at-least-once or at-most-once delivery, a timeout per try, retries with backoff, a breaker, dead
 * letters and parking, replay and skip, and stats.
 *
 * <p>A sink comes from the configuration ({@code target: {class: com.acme.MySink, settings: {...}}},
 * the class from the plugins folder or the class path, with a public constructor taking the
 * settings as a {@code com.fasterxml.jackson.databind.JsonNode}, or none), or is registered in code
 * with {@code KfoldNode.Options.withSink(name, sink)} and named by {@code target: {name: ...}}.
 *
 * <p>{@link #deliver} is called on the worker's event loop: it must not block; hand blocking work
 * to {@code vertx.executeBlocking} and answer with its future. A change may be delivered more than
 * once (at-least-once: after a failure or a crash), so a sink should apply a change once, for
 * example keyed by {@link Change#eventId()}. One method to write: a lambda is a sink.
 */
@FunctionalInterface
public interface EffectSink {

  /**
   * Runs the effect of one change. A failed future (or a thrown exception) with a
   * {@link PermanentFailure} dead-letters the change at once and parks its entity; any other
   * failure is retried as the worker's retry and breaker say.
   */
  Future<Void> deliver(Change change);

  /** Called when the worker stops, for a sink that kfold created from {@code class:}. */
  default Future<Void> close() {
    return Future.succeededFuture();
  }

  /** A failure that retrying cannot cure, such as a 4xx answer or an e-mail without a recipient. */
  final class PermanentFailure extends RuntimeException {
    public PermanentFailure(String message) {
      super(message);
    }

    public PermanentFailure(String message, Throwable cause) {
      super(message, cause);
    }
  }
}
