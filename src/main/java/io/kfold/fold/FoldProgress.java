package io.kfold.fold;

import org.apache.kafka.common.TopicPartition;

import java.util.Map;
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
    lag = Map.copyOf(lagByPartition);
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

  /** True once the group gave this node its partitions and it has folded all they held. */
  public boolean caughtUp() {
    return assigned && failure == null && lag.values().stream().allMatch(l -> l == 0);
  }

  /** Why the fold stopped, or null while it runs. */
  public Throwable failure() {
    return failure;
  }
}
