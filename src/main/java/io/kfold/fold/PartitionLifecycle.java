package io.kfold.fold;

import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.common.TopicPartition;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.IntSupplier;

/**
 * Records what the group changes in the fold's partitions, for the fold's loop to act on after the
 * poll: restores never run inside a rebalance callback. Runs on the fold's thread, inside poll.
 *
 * <p>The group rebalances incrementally ({@code BalancedAssignor}, cooperative): the callbacks name
 * only the partitions added or taken away, never those the node keeps, which go on folding through
 * the rebalance. An assignment is reported also when it adds nothing: every member hears of each
 * generation, which the node claims.
 *
 * <p>Two things cannot wait for the poll to return. Newly assigned partitions are held back (paused)
 * at once, so that the poll that assigns them returns none of their records before the loop has
 * restored them and moved them to the store's offset. And partitions taken away are handed over
 * before the callback returns: the group gives them to another node in its next round, which this
 * node's revocation starts, and this node must stop taking writes for them and finish their
 * publishes first.
 */
final class PartitionLifecycle implements ConsumerRebalanceListener {

  enum Kind { ASSIGNED, REVOKED, LOST }

  /** One change; {@code generation} is the group's generation for an assignment, -1 otherwise. */
  record Change(Kind kind, Set<TopicPartition> partitions, int generation) {}

  /** What must happen to partitions taken away before the callback returns. */
  interface Handover {
    /** Stops folding the partitions; {@code lost}: they may have another owner already, so publish nothing more. */
    void stopFolding(Collection<TopicPartition> partitions, boolean lost);
  }

  private final Consumer<Collection<TopicPartition>> holdBack;
  private final IntSupplier generation;
  private final Handover handover;
  private final List<Change> changes = new ArrayList<>();
  private boolean stopped;

  /**
   * @param holdBack   pauses partitions in the consumer
   * @param generation the consumer group's current generation
   */
  PartitionLifecycle(Consumer<Collection<TopicPartition>> holdBack, IntSupplier generation, Handover handover) {
    this.holdBack = holdBack;
    this.generation = generation;
    this.handover = handover;
  }

  @Override
  public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
    if (stopped) {
      return;
    }
    holdBack.accept(partitions);
    // Also when empty: the assignment completes a rebalance, whose generation the node claims.
    changes.add(new Change(Kind.ASSIGNED, Set.copyOf(partitions), generation.getAsInt()));
  }

  @Override
  public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
    taken(Kind.REVOKED, partitions);
  }

  @Override
  public void onPartitionsLost(Collection<TopicPartition> partitions) {
    taken(Kind.LOST, partitions);
  }

  private void taken(Kind kind, Collection<TopicPartition> partitions) {
    if (stopped || partitions.isEmpty()) {
      return;
    }
    changes.add(new Change(kind, Set.copyOf(partitions), -1));
    handover.stopFolding(partitions, kind == Kind.LOST);
  }

  /** The changes since the last call, oldest first. */
  List<Change> take() {
    List<Change> taken = List.copyOf(changes);
    changes.clear();
    return taken;
  }

  /** From now on records nothing and hands nothing over: the loop closes the consumer and does that itself. */
  void stop() {
    stopped = true;
  }
}
