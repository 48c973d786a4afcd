package io.kfold.fold;

import org.apache.kafka.common.TopicPartition;

import java.util.Collection;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;

/**
 * What the fold has done so far, read by {@code /ready} and {@code /metrics}. Written by the fold's
 * thread only; read from anywhere.
 */
public final class FoldProgress {

  public final LongAdder applied = new LongAdder();
  public final LongAdder duplicates = new LongAdder();
  public final LongAdder conflicts = new LongAdder();
  public final LongAdder deadLettered = new LongAdder();
  public final LongAdder batches = new LongAdder();

  private volatile boolean assigned;
  private volatile Map<TopicPartition, Long> lag = Map.of();
  private volatile Throwable failure;
  /** Assigned partitions the fold has read to their end at least once since it was given them. */
  private final Set<TopicPartition> currentPartitions = ConcurrentHashMap.newKeySet();

  private volatile int generation = -1;

  /** The group has given this node its partitions (maybe none, when there are more nodes than partitions). */
  void assigned(int groupGeneration) {
    assigned = true;
    generation = groupGeneration;
  }

  /** The consumer group's generation of the last assignment: a later one supersedes every earlier claim. */
  public int generation() {
    return generation;
  }

  void lag(Map<TopicPartition, Long> lagByPartition) {
    currentPartitions.retainAll(lagByPartition.keySet());
    lagByPartition.forEach((partition, records) -> {
      if (records == 0) {
        currentPartitions.add(partition);
      }
    });
    lag = Map.copyOf(lagByPartition);
  }

  /** The group takes the partitions away (maybe to give some back): they must be caught up on again. */
  void revoked(Collection<TopicPartition> partitions) {
    currentPartitions.removeAll(partitions);
  }

  void failed(Throwable cause) {
    failure = cause;
  }

  /** Records not yet folded in each assigned partition; -1 where not known yet. */
  public Map<TopicPartition, Long> lag() {
    return lag;
  }

  /** Whether the group gave this node the partition to fold. */
  public boolean folds(TopicPartition partition) {
    return lag.containsKey(partition);
  }

  /**
   * Whether this node folds the partition and, since the group gave it the partition, has folded
   * everything the partition held: only then are its states of the partition's entities current.
   * Until then they may lag behind what the previous owner folded and acknowledged.
   */
  public boolean current(TopicPartition partition) {
    return folds(partition) && currentPartitions.contains(partition);
  }

  /** True once the group gave this node its partitions and it has folded all they held. */
  public boolean caughtUp() {
    return assigned && failure == null && lag.values().stream().allMatch(l -> l == 0);
  }

  /** Why the fold stopped, or null while it runs. */
  public Throwable failure() {
    return failure;
  }
}
