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
import java.util.Set;
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
  /** Per source partition, the offset below which everything the fold wrote for it is published. */
  private final Map<TopicPartition, Long> published = new ConcurrentHashMap<>();
  private final Map<TopicPartition, List<OffsetWaiter>> byPublished = new ConcurrentHashMap<>();
  private final Map<TopicPartition, List<OffsetWaiter>> byPosition = new ConcurrentHashMap<>();

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
   * Completes once everything this node's fold wrote for the records of {@code partition} up to
   * {@code offset} included is published: their changes, dead letters and view contributions are
   * in the topics (committed, with transactions), where readers of those topics find them. Only
   * the node that folds the partition learns this; elsewhere the wait runs out.
   */
  public Future<Void> awaitPublished(TopicPartition partition, long offset, long timeoutMs) {
    Waiter<Void> waiter = register(byPublished, partition, offset, timeoutMs, "the fold of " + partition
        + " did not publish what the records up to offset " + offset + " brought within " + timeoutMs + " ms");
    // Reported before the waiter was registered: the map holds it (set before the waiters are looked at).
    Long next = published.get(partition);
    if (next != null && next > offset) {
      removeWaiter(byPublished, partition, waiter);
      waiter.complete(null);
    }
    return waiter.promise.future();
  }

  /**
   * Completes once the fold's consumer has read {@code partition} up to {@code end} and written to
   * the store every record below it: records, and the transaction markers and aborted records it
   * passes over, so it can wait for a log end offset.
   */
  public Future<Void> awaitPosition(TopicPartition partition, long end, long timeoutMs) {
    Waiter<Void> waiter = register(byPosition, partition, end - 1, timeoutMs, "the fold of " + partition
        + " did not read up to offset " + end + " within " + timeoutMs + " ms");
    // Every record below the store's offset is folded; the fold reports its position each round
    // while someone waits, so a position reached before the waiter was registered is reported again.
    vertx.executeBlocking(() -> store.nextOffset(partition.topic(), partition.partition()), false).onComplete(read -> {
      if (read.failed()) {
        removeWaiter(byPosition, partition, waiter);
        waiter.cancelTimer();
        waiter.promise.tryFail(read.cause());
      } else if (end <= 0 || read.result().isPresent() && read.result().getAsLong() >= end) {
        removeWaiter(byPosition, partition, waiter);
        waiter.complete(null);
      }
    });
    return waiter.promise.future();
  }

  /** The partitions whose fold position someone waits for: the fold reports them after each round. */
  Set<TopicPartition> positionsWanted() {
    return byPosition.keySet();
  }

  private Waiter<Void> register(Map<TopicPartition, List<OffsetWaiter>> waiters, TopicPartition partition,
                                long offset, long timeoutMs, String timeoutMessage) {
    OffsetWaiter waiter = new OffsetWaiter(offset, new Waiter<>(vertx.getOrCreateContext()));
    waiters.compute(partition, (k, list) -> {
      List<OffsetWaiter> partitionWaiters = list == null ? new CopyOnWriteArrayList<>() : list;
      partitionWaiters.add(waiter);
      return partitionWaiters;
    });
    waiter.waiter.timeout(timeoutMs, timeoutMessage, () -> removeWaiter(waiters, partition, waiter.waiter));
    return waiter.waiter;
  }

  private static void removeWaiter(Map<TopicPartition, List<OffsetWaiter>> waiters, TopicPartition partition,
                                   Waiter<Void> waiter) {
    waiters.computeIfPresent(partition, (k, list) -> {
      list.removeIf(w -> w.waiter == waiter);
      return list.isEmpty() ? null : list;
    });
  }

  /** Completes the waiters of each partition whose offset lies below its next offset. */
  private static void passed(Map<TopicPartition, List<OffsetWaiter>> waiters, Map<TopicPartition, Long> nextOffsets) {
    nextOffsets.forEach((partition, next) -> {
      List<OffsetWaiter> partitionWaiters = waiters.get(partition);
      if (partitionWaiters == null) {
        return;
      }
      for (OffsetWaiter waiter : partitionWaiters) {
        if (next > waiter.offset) {
          partitionWaiters.remove(waiter);
          waiter.waiter.complete(null);
        }
      }
      waiters.computeIfPresent(partition, (k, list) -> list.isEmpty() ? null : list);
    });
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

  /**
   * Called by the fold's publisher when what it wrote for the records of each partition below the
   * given offset is published. Kept (it stays true) for waiters that come later.
   */
  void reportPublished(Map<TopicPartition, Long> nextOffsets) {
    nextOffsets.forEach((partition, next) -> published.merge(partition, next, Math::max));
    passed(byPublished, nextOffsets);
  }

  /** Called by the fold after a round's write: its consumer's position in partitions someone waits for. */
  void reportPositions(Map<TopicPartition, Long> positions) {
    passed(byPosition, positions);
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
