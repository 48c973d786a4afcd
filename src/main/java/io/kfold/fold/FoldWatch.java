package io.kfold.fold;

import io.kfold.entity.KfoldException;
import io.kfold.store.EntityStore;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import org.apache.kafka.common.TopicPartition;

import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * Lets callers wait for the fold: for an entity to reach a version (read your writes) or for the
 * verdict on one event (was the append accepted?). The fold's thread reports after each write;
 * waiters are completed on their own Vert.x context, and every wait is bounded by a timer.
 */
public final class FoldWatch {

  /** What the fold did with one event. */
  public enum Verdict { APPLIED, DUPLICATE, CONFLICT, DEAD_LETTERED }

  private final Vertx vertx;
  private final EntityStore store;
  private final Map<String, Waiter<Verdict>> byEventId = new ConcurrentHashMap<>();
  private final Map<String, List<VersionWaiter>> byEntity = new ConcurrentHashMap<>();
  private final Map<String, List<ChangeListener>> listeners = new ConcurrentHashMap<>();
  private final Map<TopicPartition, List<OffsetWaiter>> byPartition = new ConcurrentHashMap<>();

  public FoldWatch(Vertx vertx, EntityStore store) {
    this.vertx = vertx;
    this.store = store;
  }

  /**
   * Completes with the fold's verdict on the event, to be written to {@code partition}; register
   * before the event is produced.
   */
  public Future<Verdict> awaitVerdict(String eventId, TopicPartition partition, long timeoutMs) {
    Waiter<Verdict> waiter = new Waiter<>(vertx.getOrCreateContext());
    waiter.partition = partition;
    byEventId.put(eventId, waiter);
    waiter.timeout(timeoutMs, "the fold gave no verdict on event " + eventId + " within " + timeoutMs + " ms",
        () -> byEventId.remove(eventId, waiter));
    return waiter.promise.future();
  }

  /** Forgets a verdict nobody will wait for, such as that of an event that could not be produced. */
  public void forget(String eventId) {
    Waiter<Verdict> waiter = byEventId.remove(eventId);
    if (waiter != null) {
      waiter.cancelTimer();
    }
  }

  /** Completes once the entity's stored version is at least {@code minVersion}. */
  public Future<Void> awaitVersion(String type, String key, long minVersion, long timeoutMs) {
    String entity = type + "/" + key;
    VersionWaiter waiter = new VersionWaiter(minVersion, new Waiter<>(vertx.getOrCreateContext()));
    byEntity.compute(entity, (k, list) -> {
      List<VersionWaiter> waiters = list == null ? new CopyOnWriteArrayList<>() : list;
      waiters.add(waiter);  // inside compute: never into a list that a removal just dropped
      return waiters;
    });
    Runnable remove = () -> byEntity.computeIfPresent(entity, (k, list) -> {
      list.remove(waiter);
      return list.isEmpty() ? null : list;
    });
    waiter.waiter.timeout(timeoutMs, type + " '" + key + "' did not reach version " + minVersion + " within "
        + timeoutMs + " ms", remove);
    // The fold may have passed the version before the waiter was registered: look once.
    vertx.executeBlocking(() -> store.get(type, key), false).onComplete(read -> {
      if (read.failed()) {
        remove.run();
        waiter.waiter.cancelTimer();
        waiter.waiter.promise.tryFail(read.cause());
      } else if (read.result() != null && read.result().version() >= minVersion) {
        remove.run();
        waiter.waiter.complete(null);
      }
    });
    return waiter.waiter.promise.future().mapEmpty();
  }

  /**
   * Completes once the fold has written to the store every record of {@code partition} up to
   * {@code offset} included: a query of the partition's entities then sees the event at that offset.
   */
  public Future<Void> awaitFolded(TopicPartition partition, long offset, long timeoutMs) {
    OffsetWaiter waiter = new OffsetWaiter(offset, new Waiter<>(vertx.getOrCreateContext()));
    byPartition.compute(partition, (k, list) -> {
      List<OffsetWaiter> waiters = list == null ? new CopyOnWriteArrayList<>() : list;
      waiters.add(waiter);
      return waiters;
    });
    Runnable remove = () -> byPartition.computeIfPresent(partition, (k, list) -> {
      list.remove(waiter);
      return list.isEmpty() ? null : list;
    });
    waiter.waiter.timeout(timeoutMs, "the fold of " + partition + " did not pass offset " + offset + " within "
        + timeoutMs + " ms", remove);
    // The fold may have passed the offset before the waiter was registered (or a restore did): look once.
    vertx.executeBlocking(() -> store.nextOffset(partition.topic(), partition.partition()), false).onComplete(read -> {
      if (read.failed()) {
        remove.run();
        waiter.waiter.cancelTimer();
        waiter.waiter.promise.tryFail(read.cause());
      } else if (read.result().isPresent() && read.result().getAsLong() > offset) {
        remove.run();
        waiter.waiter.complete(null);
      }
    });
    return waiter.waiter.promise.future();
  }

  /**
   * Calls {@code onChange} with every change of the entity the fold applies from now on (the JSON
   * of a change record: id, event, state), in order, on the caller's context, until the returned
   * action is run.
   */
  public Runnable listen(String type, String key, Handler<Buffer> onChange) {
    String entity = type + "/" + key;
    ChangeListener listener = new ChangeListener(vertx.getOrCreateContext(), onChange);
    listeners.compute(entity, (k, list) -> {
      List<ChangeListener> entityListeners = list == null ? new CopyOnWriteArrayList<>() : list;
      entityListeners.add(listener);
      return entityListeners;
    });
    return () -> listeners.computeIfPresent(entity, (k, list) -> {
      list.remove(listener);
      return list.isEmpty() ? null : list;
    });
  }

  /** True when nobody waits or listens, so the fold can skip reporting. */
  boolean idle() {
    return byEventId.isEmpty() && byEntity.isEmpty() && listeners.isEmpty() && byPartition.isEmpty();
  }

  /** Called by the fold after the write that holds a poll's records: the next offset of each partition folded. */
  void reportFolded(Map<TopicPartition, Long> nextOffsets) {
    nextOffsets.forEach((partition, next) -> {
      List<OffsetWaiter> waiters = byPartition.get(partition);
      if (waiters == null) {
        return;
      }
      for (OffsetWaiter waiter : waiters) {
        if (next > waiter.offset) {
          waiters.remove(waiter);
          waiter.waiter.complete(null);
        }
      }
      byPartition.computeIfPresent(partition, (k, list) -> list.isEmpty() ? null : list);
    });
  }

  /** Called by the fold after the write that holds the change. */
  void reportChange(String type, String key, byte[] change) {
    List<ChangeListener> entityListeners = listeners.get(type + "/" + key);
    if (entityListeners != null) {
      Buffer buffer = Buffer.buffer(change);
      for (ChangeListener listener : entityListeners) {
        listener.context.runOnContext(v -> listener.onChange.handle(buffer));
      }
    }
  }

  /** Called by the fold after the write that holds the event. */
  void reportVerdict(String eventId, Verdict verdict) {
    Waiter<Verdict> waiter = byEventId.remove(eventId);
    if (waiter != null) {
      waiter.complete(verdict);
    }
  }

  /**
   * Called by the fold when the group takes partitions away: the verdicts on their events will come
   * from another node, so their waiters learn at once that the outcome is unknown here.
   */
  void revoked(Collection<TopicPartition> partitions) {
    byEventId.forEach((eventId, waiter) -> {
      if (partitions.contains(waiter.partition) && byEventId.remove(eventId, waiter)) {
        waiter.fail(KfoldException.timeout("the entity's partition " + waiter.partition + " moved to another node before"
            + " the fold's verdict on event " + eventId + ": the outcome is unknown; retry with the same Idempotency-Key"));
      }
    });
  }

  /** Called by the fold after the write that holds the entity's new state. */
  void reportVersion(String type, String key, long version) {
    List<VersionWaiter> waiters = byEntity.get(type + "/" + key);
    if (waiters == null) {
      return;
    }
    for (VersionWaiter waiter : waiters) {
      if (version >= waiter.minVersion) {
        waiters.remove(waiter);
        waiter.waiter.complete(null);
      }
    }
    byEntity.computeIfPresent(type + "/" + key, (k, list) -> list.isEmpty() ? null : list);
  }

  private record OffsetWaiter(long offset, Waiter<Void> waiter) {}

  private record VersionWaiter(long minVersion, Waiter<Void> waiter) {}

  private record ChangeListener(Context context, Handler<Buffer> onChange) {}

  private final class Waiter<T> {
    final Context context;
    final Promise<T> promise = Promise.promise();
    volatile long timerId = -1;
    /** The partition of the event waited for, for a verdict waiter. */
    volatile TopicPartition partition;

    Waiter(Context context) {
      this.context = context;
    }

    void timeout(long timeoutMs, String message, Runnable onTimeout) {
      timerId = vertx.setTimer(Math.max(1, timeoutMs), id -> {
        onTimeout.run();
        context.runOnContext(v -> promise.tryFail(KfoldException.timeout(message)));
      });
    }

    void cancelTimer() {
      vertx.cancelTimer(timerId);
    }

    void complete(T value) {
      cancelTimer();
      context.runOnContext(v -> promise.tryComplete(value));
    }

    void fail(Throwable cause) {
      cancelTimer();
      context.runOnContext(v -> promise.tryFail(cause));
    }
  }
}
