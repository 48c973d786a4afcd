package io.kfold.fold;

import io.kfold.fold.PartitionLifecycle.Change;
import io.kfold.fold.PartitionLifecycle.Kind;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;

class PartitionLifecycleTest {

  private final TopicPartition p0 = new TopicPartition("events", 0);
  private final TopicPartition p1 = new TopicPartition("events", 1);
  private final List<Collection<TopicPartition>> heldBack = new ArrayList<>();
  private final List<String> handedOver = new ArrayList<>();
  private int generation = 7;
  private final PartitionLifecycle lifecycle = new PartitionLifecycle(heldBack::add, () -> generation,
      (partitions, lost) -> handedOver.add((lost ? "lost " : "revoked ") + partitions));

  @Test
  @DisplayName("the callbacks hold new partitions back and record the changes in order, for the loop to take after the poll")
  void recordsInOrder() {
    lifecycle.onPartitionsAssigned(List.of(p0, p1));
    assertThat(heldBack).containsExactly(List.of(p0, p1));
    lifecycle.onPartitionsRevoked(List.of(p0, p1));
    generation = 8;
    lifecycle.onPartitionsAssigned(List.of(p1));
    assertThat(lifecycle.take()).containsExactly(new Change(Kind.ASSIGNED, Set.of(p0, p1), 7),
        new Change(Kind.REVOKED, Set.of(p0, p1), -1), new Change(Kind.ASSIGNED, Set.of(p1), 8));
    assertThat(lifecycle.take()).as("taken once").isEmpty();
  }

  @Test
  @DisplayName("partitions taken away are handed over before the callback returns; lost ones publish nothing more")
  void handsOverBeforeReturning() {
    lifecycle.onPartitionsRevoked(List.of());
    lifecycle.onPartitionsRevoked(List.of(p0));
    lifecycle.onPartitionsLost(List.of(p1));
    assertThat(handedOver).containsExactly("revoked [" + p0 + "]", "lost [" + p1 + "]");
    assertThat(lifecycle.take()).extracting(Change::kind).containsExactly(Kind.REVOKED, Kind.LOST);
  }

  @Test
  @DisplayName("an empty assignment is recorded too: it completes a rebalance, whose generation the node claims")
  void emptyAssignment() {
    lifecycle.onPartitionsAssigned(List.of());
    assertThat(lifecycle.take()).containsExactly(new Change(Kind.ASSIGNED, Set.of(), 7));
  }

  @Test
  @DisplayName("once stopped, the callbacks that closing the consumer calls record and hand over nothing")
  void stopped() {
    lifecycle.stop();
    lifecycle.onPartitionsRevoked(List.of(p0));
    lifecycle.onPartitionsAssigned(List.of(p1));
    assertThat(lifecycle.take()).isEmpty();
    assertThat(handedOver).isEmpty();
    assertThat(heldBack).isEmpty();
  }
}
