package io.kfold.effects;

import io.kfold.effects.Breaker.Admission;
import io.kfold.effects.EffectConfig.Delivery;
import io.kfold.entity.EffectSink.PermanentFailure;
import io.vertx.core.Future;
import io.vertx.core.Promise;

import java.util.concurrent.TimeoutException;
import java.util.function.DoubleSupplier;

/**
 * Runs a change's effect through the worker's sink: each try bounded by the worker's timeout;
 * at-least-once retries a failure with exponential backoff and jitter up to the configured
 * attempts, at-most-once tries once; a {@link Breaker} shared by all the worker's changes holds
 * them back while the target is down. Runs on the worker's event loop.
 */
final class DeliveryEngine {

  /** How a delivery ended: delivered, or given up with the error to dead-letter. */
  record Outcome(String error, int attempts) {
    static final Outcome DELIVERED = new Outcome(null, 0);

    boolean delivered() {
      return error == null;
    }
  }

  private final EffectConfig effect;
  private final EffectSink sink;
  private final Timer timer;
  /** Uniform in [0, 1), for the jitter. */
  private final DoubleSupplier random;
  private final EffectStats stats;
  private final Breaker breaker;

  DeliveryEngine(EffectConfig effect, EffectSink sink, Timer timer, DoubleSupplier random, EffectStats stats) {
    this.effect = effect;
    this.sink = sink;
    this.timer = timer;
    this.random = random;
    this.stats = stats;
    this.breaker = new Breaker(effect.name(), effect.breaker(), timer, stats);
  }

  Breaker.State breaker() {
    return breaker.state();
  }

  Future<Outcome> deliver(Change change) {
    Promise<Outcome> outcome = Promise.promise();
    attempt(change, 1, outcome);
    return outcome.future();
  }

  /** One try of a parked change that an operator replays: no retries, no breaker, the operator is watching. */
  Future<Void> replay(Change change) {
    return once(change).onSuccess(v -> stats.delivered.increment());
  }

  private void attempt(Change change, int attempt, Promise<Outcome> outcome) {
    Admission admission = breaker.admit(() -> attempt(change, attempt, outcome));
    if (admission == Admission.WAIT) {
      return;
    }
    once(change).onComplete(result -> {
      if (result.succeeded()) {
        breaker.succeeded();
        stats.delivered.increment();
        outcome.complete(Outcome.DELIVERED);
        return;
      }
      Throwable error = result.cause();
      if (error instanceof PermanentFailure) {
        breaker.succeeded();  // the target answered: it is up
        outcome.complete(new Outcome(error.getMessage(), attempt));
        return;
      }
      boolean counted = breaker.failed(admission);
      if (effect.delivery() == Delivery.AT_MOST_ONCE) {
        outcome.complete(new Outcome("at-most-once, not retried: " + error, attempt));
      } else if (counted && attempt >= effect.retry().attempts()) {
        outcome.complete(new Outcome(error.toString(), attempt));
      } else {
        stats.retried.increment();
        int next = counted ? attempt + 1 : attempt;  // a failure while the target is down costs no attempt
        timer.schedule(backoff(attempt), () -> attempt(change, next, outcome));
      }
    });
  }

  /** The sink's answer, or a timeout after the worker's timeoutMs. */
  private Future<Void> once(Change change) {
    Promise<Void> result = Promise.promise();
    Runnable cancel = timer.schedule(effect.timeoutMs(), () -> result.tryFail(
        new TimeoutException("no answer within " + effect.timeoutMs() + " ms")));
    Future<Void> delivery;
    try {
      delivery = sink.deliver(change);
    } catch (RuntimeException e) {
      delivery = Future.failedFuture(e);
    }
    delivery.onComplete(answer -> {
      cancel.run();
      if (answer.succeeded()) {
        result.tryComplete();
      } else {
        result.tryFail(answer.cause());
      }
    });
    return result.future();
  }

  /** The n-th retry waits initialDelayMs * 2^(n-1), at most maxDelayMs, +/- jitter; never less than 1 ms. */
  long backoff(int attempt) {
    EffectConfig.Retry retry = effect.retry();
    double delay = Math.min(retry.maxDelayMs(), retry.initialDelayMs() * Math.pow(2, attempt - 1));
    double jitter = 1 + retry.jitter() * (random.getAsDouble() * 2 - 1);
    return Math.max(1, (long) (delay * jitter));
  }
}
