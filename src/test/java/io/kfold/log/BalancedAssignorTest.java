package io.kfold.log;

import org.apache.kafka.clients.consumer.ConsumerPartitionAssignor.Assignment;
import org.apache.kafka.clients.consumer.ConsumerPartitionAssignor.GroupSubscription;
import org.apache.kafka.clients.consumer.ConsumerPartitionAssignor.Subscription;
import org.apache.kafka.common.Cluster;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The assignor's algorithm without a broker: the group's rounds are played here as the consumers
 * play them (each member reports what it owns and its generation; a member that loses a partition
 * revokes it and the group runs another round), with the consumer's own check of the cooperative
 * rule applied to every round.
 */
class BalancedAssignorTest {

  private static final List<String> TYPES = List.of("kfold.a.events", "kfold.b.events", "kfold.c.events");

  private final BalancedAssignor assignor = new BalancedAssignor();

  /** The group as the members see it: what each owns, and the generation each last took part in. */
  private final Map<String, Set<TopicPartition>> owned = new TreeMap<>();
  private final Map<String, Integer> generationOf = new HashMap<>();
  private int generation;
  /** Partitions that changed hands (revoked, or assigned where they were not owned) since the last reset. */
  private final Set<TopicPartition> moved = new HashSet<>();
  /** Per member, the partitions it keeps warm copies of, as its join request says. */
  private final Map<String, Set<TopicPartition>> warm = new HashMap<>();

  @Test
  void threeNodesOnThreeTypesOfFourPartitionsFoldOneOrTwoOfEachTypeAndFourInAll() {
    Cluster cluster = cluster(4, 4, 4);
    join("node-a", "node-b", "node-c");
    settle(cluster);

    for (String member : owned.keySet()) {
      assertEquals(4, owned.get(member).size(), member + " folds " + owned.get(member));
      for (String topic : TYPES) {
        long ofTopic = owned.get(member).stream().filter(p -> p.topic().equals(topic)).count();
        assertTrue(ofTopic == 1 || ofTopic == 2, member + " folds " + ofTopic + " partitions of " + topic);
      }
    }
    assertEveryPartitionOnce(cluster);
  }

  @Test
  void everyTopicAndTheTotalsDifferByOneAtMostForAnyGroupSize() {
    for (int members = 1; members <= 6; members++) {
      for (int[] sizes : List.of(new int[] {4, 4, 4}, new int[] {1, 2, 3}, new int[] {7, 5, 12}, new int[] {2, 2, 2})) {
        owned.clear();
        generationOf.clear();
        Cluster cluster = cluster(sizes);
        for (int m = 0; m < members; m++) {
          join("node-" + m);
        }
        settle(cluster);
        assertEveryPartitionOnce(cluster);
        assertBalanced(members + " members on " + java.util.Arrays.toString(sizes));
      }
    }
  }

  @Test
  void aNodeThatLeavesMovesOnlyItsOwnPartitions() {
    Cluster cluster = cluster(4, 4, 4);
    join("node-a", "node-b", "node-c");
    settle(cluster);
    Map<String, Set<TopicPartition>> before = copy(owned);

    leave("node-b");
    moved.clear();
    settle(cluster);

    assertEquals(before.get("node-b"), moved, "only the partitions of the node that left move");
    for (String member : owned.keySet()) {
      assertTrue(owned.get(member).containsAll(before.get(member)), member + " keeps every partition it had");
    }
    assertEveryPartitionOnce(cluster);
    assertBalanced("two members left");
  }

  @Test
  void theMovedPartitionsOfANodeThatLeavesGoToTheNodesThatKeepThemWarmWhereTheBalanceAllows() {
    Cluster cluster = cluster(4, 4, 4);
    // Without warm copies; then each of b's partitions is kept warm by the node it did not go to.
    Set<TopicPartition> ofB = bLeaves(cluster, Map.of());
    Map<String, Set<TopicPartition>> warmCopies = Map.of(
        "node-a", ofB.stream().filter(owned.get("node-c")::contains).collect(Collectors.toSet()),
        "node-c", ofB.stream().filter(owned.get("node-a")::contains).collect(Collectors.toSet()));

    bLeaves(cluster, warmCopies);

    Set<TopicPartition> cold = new HashSet<>();
    warmCopies.forEach((node, partitions) -> partitions.stream().filter(p -> !owned.get(node).contains(p))
        .forEach(cold::add));
    assertTrue(cold.size() < ofB.size(), "some of b's partitions go where they are warm: " + owned);
    for (TopicPartition partition : cold) {
      String node = warmCopies.get("node-a").contains(partition) ? "node-a" : "node-c";
      long ofTopic = owned.get(node).stream().filter(p -> p.topic().equals(partition.topic())).count();
      assertEquals(2, ofTopic, partition + " did not go to " + node + ", which keeps it warm and had room: " + owned);
    }
    assertEveryPartitionOnce(cluster);
    assertBalanced("two members left");
  }

  /** Three nodes settle, then b leaves, with the nodes' warm copies; answers b's partitions. */
  private Set<TopicPartition> bLeaves(Cluster cluster, Map<String, Set<TopicPartition>> warmCopies) {
    owned.clear();
    generationOf.clear();
    warm.clear();
    join("node-a", "node-b", "node-c");
    settle(cluster);
    Set<TopicPartition> ofB = Set.copyOf(owned.get("node-b"));
    leave("node-b");
    warm.putAll(warmCopies);
    settle(cluster);
    return ofB;
  }

  @Test
  void aNodeThatJoinsTakesOnlyItsShareAndNothingElseMoves() {
    Cluster cluster = cluster(4, 4, 4);
    join("node-a", "node-b");
    settle(cluster);
    Map<String, Set<TopicPartition>> before = copy(owned);

    join("node-c");
    moved.clear();
    settle(cluster);

    assertEquals(owned.get("node-c"), moved, "only what the new node takes moves");
    assertEquals(4, owned.get("node-c").size());
    for (String member : before.keySet()) {
      assertTrue(before.get(member).containsAll(owned.get(member)), member + " only gives partitions up");
    }
    assertBalanced("a third member joined");
  }

  @Test
  void aPartitionStillOwnedIsNeverGivenToAnotherMemberInTheSameRound() {
    Cluster cluster = cluster(4, 4, 4);
    join("node-a", "node-b");
    settle(cluster);
    join("node-c");

    Map<String, List<TopicPartition>> first = round(cluster);
    assertEquals(List.of(), first.get("node-c"), "the new member gets nothing while the others still own it all");
    Set<TopicPartition> revoked = new HashSet<>();
    for (String member : List.of("node-a", "node-b")) {
      Set<TopicPartition> gone = new HashSet<>(owned.get(member));
      first.get(member).forEach(gone::remove);
      revoked.addAll(gone);
    }
    assertEquals(4, revoked.size(), "the others revoke what the new member is to take");
    apply(first);

    Map<String, List<TopicPartition>> second = round(cluster);
    assertEquals(revoked, new HashSet<>(second.get("node-c")), "the next round gives the new member what was revoked");
  }

  @Test
  void ofTwoClaimsOfOnePartitionTheLaterGenerationsStandsAndEqualOnesAreBothRevoked() {
    Cluster cluster = cluster(2);
    TopicPartition zero = new TopicPartition(TYPES.get(0), 0);
    TopicPartition one = new TopicPartition(TYPES.get(0), 1);
    Map<String, Subscription> subscriptions = new HashMap<>();
    subscriptions.put("stale", subscription("stale", List.of(zero, one), 3, Set.of()));
    subscriptions.put("fresh", subscription("fresh", List.of(zero), 5, Set.of()));
    Map<String, Assignment> assigned = assignor.assign(cluster, new GroupSubscription(subscriptions)).groupAssignment();
    assertEquals(List.of(zero), assigned.get("fresh").partitions(), "the later generation keeps its partition");
    assertEquals(List.of(one), assigned.get("stale").partitions(), "the earlier claim of it is not kept");

    subscriptions.put("stale", subscription("stale", List.of(zero, one), 5, Set.of()));
    assigned = assignor.assign(cluster, new GroupSubscription(subscriptions)).groupAssignment();
    assertEquals(List.of(one), assigned.get("stale").partitions());
    assertEquals(List.of(), assigned.get("fresh").partitions(), "a partition claimed twice in one generation waits");
  }

  @Test
  void aWholeClusterRestartedGetsTheSameAssignmentBack() {
    Cluster cluster = cluster(4, 4, 4);
    join("node-a", "node-b", "node-c");
    settle(cluster);
    Map<String, Set<TopicPartition>> before = copy(owned);

    owned.replaceAll((member, partitions) -> new HashSet<>());  // new consumers own nothing
    generationOf.replaceAll((member, g) -> -1);
    settle(cluster);

    assertEquals(before, owned);
  }

  @Test
  void aNodeThatLeavesAndComesBackGetsItsPartitionsBack() {
    Cluster cluster = cluster(4, 4, 4);
    join("node-a", "node-b", "node-c");
    settle(cluster);
    Map<String, Set<TopicPartition>> before = copy(owned);

    leave("node-a");
    settle(cluster);
    join("node-a");
    settle(cluster);

    assertEquals(before, owned);
  }

  // The group's rounds, as the consumers play them.

  private void join(String... members) {
    for (String member : members) {
      owned.put(member, new HashSet<>());
      generationOf.put(member, -1);
    }
  }

  private void leave(String member) {
    owned.remove(member);
    generationOf.remove(member);
  }

  /** Runs rounds until no member revokes anything, as the consumers' follow-up rejoins do. */
  private void settle(Cluster cluster) {
    for (int rounds = 0; rounds < 10; rounds++) {
      if (!apply(round(cluster))) {
        return;
      }
    }
    throw new AssertionError("the group never settles: " + owned);
  }

  /** One round's assignment, checked against the cooperative rule as the consumer checks it. */
  private Map<String, List<TopicPartition>> round(Cluster cluster) {
    Map<String, Subscription> subscriptions = new HashMap<>();
    owned.forEach((member, partitions) ->
        subscriptions.put(member, subscription(member, new ArrayList<>(partitions), generationOf.get(member),
            warm.getOrDefault(member, Set.of()))));
    Map<String, Assignment> assignments = assignor.assign(cluster, new GroupSubscription(subscriptions)).groupAssignment();
    Map<String, List<TopicPartition>> assigned = new TreeMap<>();
    assignments.forEach((member, assignment) -> assigned.put(member, assignment.partitions()));
    Set<TopicPartition> added = new HashSet<>();
    Set<TopicPartition> revoked = new HashSet<>();
    assigned.forEach((member, partitions) -> {
      partitions.stream().filter(p -> !owned.get(member).contains(p)).forEach(added::add);
      owned.get(member).stream().filter(p -> !partitions.contains(p)).forEach(revoked::add);
    });
    added.retainAll(revoked);
    assertEquals(Set.of(), added, "partitions given to one member while another still owns them");
    return assigned;
  }

  /** Takes a round's assignment; answers whether some member revoked a partition (it then rejoins). */
  private boolean apply(Map<String, List<TopicPartition>> assigned) {
    generation++;
    boolean revoked = false;
    for (Map.Entry<String, List<TopicPartition>> entry : assigned.entrySet()) {
      Set<TopicPartition> had = owned.get(entry.getKey());
      Set<TopicPartition> has = new HashSet<>(entry.getValue());
      for (TopicPartition partition : had) {
        if (!has.contains(partition)) {
          revoked = true;
          moved.add(partition);
        }
      }
      has.stream().filter(p -> !had.contains(p)).forEach(moved::add);
      owned.put(entry.getKey(), has);
      generationOf.put(entry.getKey(), generation);
    }
    return revoked;
  }

  private static Subscription subscription(String instance, List<TopicPartition> owned, int generation,
                                          Set<TopicPartition> warm) {
    // The join request's user data as the member's own assignor writes it.
    BalancedAssignor members = new BalancedAssignor();
    members.configure(Map.of(BalancedAssignor.JOIN_LISTENER, new BalancedAssignor.JoinListener() {
      @Override
      public void joining() {}

      @Override
      public void joined() {}

      @Override
      public Set<TopicPartition> warm() {
        return warm;
      }
    }));
    Subscription subscription = new Subscription(TYPES, members.subscriptionUserData(Set.copyOf(TYPES)), owned, generation,
        Optional.empty());
    subscription.setGroupInstanceId(Optional.of(instance));
    return subscription;
  }

  private static Cluster cluster(int... partitions) {
    Node broker = new Node(0, "localhost", 9092);
    List<PartitionInfo> infos = new ArrayList<>();
    for (int t = 0; t < partitions.length; t++) {
      for (int p = 0; p < partitions[t]; p++) {
        infos.add(new PartitionInfo(TYPES.get(t), p, broker, new Node[] {broker}, new Node[] {broker}));
      }
    }
    return new Cluster("test", List.of(broker), infos, Set.of(), Set.of());
  }

  private void assertEveryPartitionOnce(Cluster cluster) {
    List<String> all = new ArrayList<>();
    owned.values().forEach(partitions -> partitions.forEach(p -> all.add(p.toString())));
    List<String> expected = new ArrayList<>();
    for (String topic : cluster.topics()) {
      cluster.partitionsForTopic(topic).forEach(p -> expected.add(new TopicPartition(topic, p.partition()).toString()));
    }
    all.sort(null);
    expected.sort(null);
    assertEquals(expected, all, "every partition is assigned once: " + owned);
  }

  private void assertBalanced(String group) {
    for (String topic : TYPES) {
      List<Long> counts = owned.values().stream()
          .map(partitions -> partitions.stream().filter(p -> p.topic().equals(topic)).count()).toList();
      assertTrue(spread(counts) <= 1, group + ": " + topic + " is spread " + counts);
    }
    List<Long> totals = owned.values().stream().map(partitions -> (long) partitions.size()).toList();
    assertTrue(spread(totals) <= 1, group + ": totals " + totals);
  }

  private static long spread(List<Long> counts) {
    return counts.stream().mapToLong(Long::longValue).max().orElse(0)
        - counts.stream().mapToLong(Long::longValue).min().orElse(0);
  }

  private static Map<String, Set<TopicPartition>> copy(Map<String, Set<TopicPartition>> owned) {
    Map<String, Set<TopicPartition>> copy = new TreeMap<>();
    owned.forEach((member, partitions) -> copy.put(member, Set.copyOf(partitions)));
    return copy;
  }
}
