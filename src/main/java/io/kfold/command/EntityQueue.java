package io.kfold.command;

import io.vertx.core.Future;
import io.vertx.core.Promise;

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
    Future<Void> turn = previous == null ? Future.succeededFuture() : previous;
    Future<T> result = turn.compose(v -> write.get());
    result.onComplete(ar -> {
      lastByEntity.remove(entity, done.future());
      done.complete();
    });
    return result;
  }
}
