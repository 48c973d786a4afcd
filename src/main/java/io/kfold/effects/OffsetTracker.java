package io.kfold.effects;

import java.util.HashMap;
import java.util.Map;
import java.util.OptionalLong;
import java.util.TreeSet;

/**
 * Which offset of each leased partition a worker may commit.
 *
 * <p>At-least-once: the lowest offset whose change is not finished yet (delivered, dead-lettered or
 * skipped), or the offset after the last one received when all are: a crash then delivers again
 * what was not finished, never loses it. At-most-once: the offset after the highest change about
 * to start, never lower, committed before it starts: a crash then loses what had not started,
 * never starts a change twice.
 */
final class OffsetTracker {

  /** At-least-once: the offsets received and not finished, and the offset after the last one received. */
  private static final class Received {
    final TreeSet<Long> unfinished = new TreeSet<>();
    long next;
  }

  private final Map<Lease, Received> received = new HashMap<>();
  private final Map<Lease, Long> startedBelow = new HashMap<>();

  /** At-least-once: a change read at this offset. */
  void received(Lease lease, long offset) {
    Received partition = received.computeIfAbsent(lease, l -> new Received());
    partition.unfinished.add(offset);
    partition.next = Math.max(partition.next, offset + 1);
  }

  /** At-least-once: the change at this offset is finished; answers what may be committed now, if the lease is held. */
  OptionalLong finished(Lease lease, long offset) {
    Received partition = received.get(lease);
    if (partition == null) {
      return OptionalLong.empty();
    }
    partition.unfinished.remove(offset);
    return OptionalLong.of(partition.unfinished.isEmpty() ? partition.next : partition.unfinished.first());
  }

  /**
   * At-most-once: the change at this offset is about to start; answers the offset to commit first.
   * Never lower than one answered before: a change of a lower offset may start after a higher one.
   */
  long starting(Lease lease, long offset) {
    return startedBelow.merge(lease, offset + 1, Math::max);
  }

  /** The lease ended: its partition is read again from its committed offset, here or elsewhere. */
  void forget(Lease lease) {
    received.remove(lease);
    startedBelow.remove(lease);
  }
}
