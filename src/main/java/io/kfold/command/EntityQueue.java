package io.kfold.command;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * Runs the writes of one entity one at a time, in arrival order, without blocking a thread: each
 * write starts when the previous write of the same entity has finished. Writes to different
 * entities run concurrently.
 */
final class EntityQueue {

  private final Map<String, Future<Void>> lastByEntity = new ConcurrentHashMap<>();

  <T> Future<T> run(String entity, Supplier<Future<T>> write) {
    Promise<Void> done = Promise.promise();
    Future<Void> previous = lastByEntity.put(entity, done.future());
    Future<T> result;
    if (previous == null) {
      result = start(write);
    } else {
      // The write runs on its caller's context when its turn comes, not on the thread that
      // finished the previous write (another verticle's event loop, perhaps).
      Context caller = Vertx.currentContext();
      result = previous.transform(v -> {
        if (caller == null) {
          return start(write);
        }
        Promise<T> turn = Promise.promise();
        caller.runOnContext(x -> start(write).onComplete(turn));
        return turn.future();
      });
    }
    result.onComplete(ar -> {
      lastByEntity.remove(entity, done.future());
      done.complete();
    });
    return result;
  }

  /**
   * Starts a write. One that throws instead of answering a failed future fails alone: were the
   * exception to escape, its turn would never end and every later write of the entity would wait
   * behind it forever.
   */
  private static <T> Future<T> start(Supplier<Future<T>> write) {
    try {
      return write.get();
    } catch (RuntimeException | Error e) {
      return Future.failedFuture(e);
    }
  }
}
