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
 * never starts a change twice. What such a crash would lose is kept too ({@link #unfinished}), so
 * that it can go with the commit to whoever reads the partition next.
 */
final class OffsetTracker {

  /** At-least-once: the offsets received and not finished, and the offset after the last one received. */
  private static final class Received {
    final TreeSet<Long> unfinished = new TreeSet<>();
    long next;
  }

  /** At-most-once: the offset committed before the latest start, the changes waiting to start, and how many run. */
  private static final class Started {
    long below;
    final TreeSet<Long> waiting = new TreeSet<>();
    int running;
  }

  private final Map<Lease, Received> received = new HashMap<>();
  private final Map<Lease, Started> started = new HashMap<>();

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

  /** At-most-once: a change read at this offset waits to start. */
  void waiting(Lease lease, long offset) {
    started.computeIfAbsent(lease, l -> new Started()).waiting.add(offset);
  }

  /**
   * At-most-once: the change at this offset is about to start; answers the offset to commit first.
   * Never lower than one answered before: a change of a lower offset may start after a higher one.
   */
  long starting(Lease lease, long offset) {
    Started partition = started.computeIfAbsent(lease, l -> new Started());
    partition.waiting.remove(offset);
    partition.running++;
    partition.below = Math.max(partition.below, offset + 1);
    return partition.below;
  }

  /** At-most-once: a change that was about to start is over (or did not start after all). */
  void ended(Lease lease) {
    Started partition = started.get(lease);
    if (partition != null && partition.running > 0) {
      partition.running--;
    }
  }

  /** At-most-once: the offset committed before the latest start, if one started under this lease. */
  OptionalLong committedBeforeStart(Lease lease) {
    Started partition = started.get(lease);
    return partition == null || partition.below == 0 ? OptionalLong.empty() : OptionalLong.of(partition.below);
  }

  /**
   * At-most-once: what a crash now would leave undone below the committed offset: the changes
   * passed over (waiting behind another change of their entity while a later one started; the
   * next reader starts after them) and those running (the target may or may not have had them).
   */
  Unfinished unfinished(Lease lease) {
    Started partition = started.get(lease);
    if (partition == null) {
      return Unfinished.NONE;
    }
    return new Unfinished(partition.waiting.headSet(partition.below).size(), partition.running);
  }

  /** The lease ended: its partition is read again from its committed offset, here or elsewhere. */
  void forget(Lease lease) {
    received.remove(lease);
    started.remove(lease);
  }

  /**
   * At-most-once changes below a committed offset that were not seen to finish, written as that
   * commit's metadata: the next reader of the partition counts them as lost.
   */
  record Unfinished(int passedOver, int running) {
    static final Unfinished NONE = new Unfinished(0, 0);
    private static final String PREFIX = "kfold.unfinished ";

    String metadata() {
      return PREFIX + passedOver + " " + running;
    }

    /** The counts a commit's metadata holds; none when it holds other metadata or none. */
    static Unfinished parse(String metadata) {
      if (metadata == null || !metadata.startsWith(PREFIX)) {
        return NONE;
      }
      String[] counts = metadata.substring(PREFIX.length()).split(" ");
      try {
        return new Unfinished(Integer.parseInt(counts[0]), Integer.parseInt(counts[1]));
      } catch (RuntimeException e) {
        return NONE;
      }
    }

    boolean any() {
      return passedOver > 0 || running > 0;
    }
  }
}
