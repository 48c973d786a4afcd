package io.kfold.log;

import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.ConsumerPartitionAssignor;
import org.apache.kafka.common.Configurable;
import org.apache.kafka.common.Cluster;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Gives the partitions of every topic evenly to the members subscribed to it, and keeps each
 * partition where it is whenever the balance allows: the assignor of the fold's group and of the
 * effects workers' groups.
 *
 * <p>Each topic on its own: a member gets {@code floor(n / members)} of its {@code n} partitions or
 * one more, so every node folds its share of every type (a node's work is per type, not per
 * partition). The members that get one more change from topic to topic, the fewest extras so far
 * first, so the totals differ by one at most too.
 *
 * <p>Each partition has a home: the member the same members would give it to if nobody owned
 * anything, a function of the members alone, ordered by their static instance ids when they have
 * them. A member keeps its home partitions first and a free partition goes home first, so a node
 * that leaves and comes back, or a whole cluster restarted, gets the same partitions back (warm in
 * its store, and the standbys where they were).
 *
 * <p>Cooperative (incremental) rebalancing: a member keeps what it owns up to its share and only
 * moved partitions pause. A partition that a member still owns is never given to another member in
 * the same round: the owner revokes it on this assignment and rejoins, and the next round gives it
 * out (the consumer refuses an assignment that moves an owned partition at once). Two members that
 * claim one partition (one of them was out of the group and missed a generation) are settled like
 * Kafka's sticky assignors do: the claim of the later generation stands; with equal generations,
 * neither (both revoke, the next round gives it out).
 */
public final class BalancedAssignor implements ConsumerPartitionAssignor, Configurable {

  public static final String NAME = "kfold-balanced";
  /** Consumer setting (an object, not a Kafka setting): the {@link JoinListener} of the consumer's joins. */
  public static final String JOIN_LISTENER = "kfold.join.listener";

  /**
   * Hears, on the consumer's thread inside poll, when the consumer starts to (re)join its group and
   * when the join is complete. In between, the consumer's group metadata may name a generation the
   * group has left behind: with cooperative rebalancing the consumer goes on fetching meanwhile,
   * and a transaction whose offsets carry that generation would be refused.
   */
  public interface JoinListener {
    /** The consumer sends its join request: the group's next generation is forming. */
    void joining();

    /** The consumer has its assignment and the new generation (before it hears of added partitions). */
    void joined();

    /**
     * The partitions this member keeps warm copies of, read to their end: a partition that moves goes
     * to a member that has it warm when the balance allows, which takes it over without a restore.
     */
    default Set<TopicPartition> warm() {
      return Set.of();
    }
  }

  private JoinListener listener = new JoinListener() {
    @Override
    public void joining() {}

    @Override
    public void joined() {}
  };

  @Override
  public void configure(Map<String, ?> configs) {
    if (configs.get(JOIN_LISTENER) instanceof JoinListener given) {
      listener = given;
    }
  }

  @Override
  public ByteBuffer subscriptionUserData(Set<String> topics) {
    listener.joining();  // called as the consumer builds its join request
    // The warm partitions, as "topic:partition" separated by commas (topic names hold neither).
    String warm = String.join(",", listener.warm().stream().map(p -> p.topic() + ":" + p.partition()).sorted().toList());
    return warm.isEmpty() ? null : ByteBuffer.wrap(warm.getBytes(StandardCharsets.UTF_8));
  }

  /** What a member's subscription says it keeps warm. */
  private static Set<TopicPartition> warm(Subscription subscription) {
    ByteBuffer data = subscription.userData();
    if (data == null || !data.hasRemaining()) {
      return Set.of();
    }
    Set<TopicPartition> warm = new HashSet<>();
    for (String partition : StandardCharsets.UTF_8.decode(data.duplicate()).toString().split(",")) {
      int colon = partition.lastIndexOf(':');
      if (colon > 0) {
        try {
          warm.add(new TopicPartition(partition.substring(0, colon), Integer.parseInt(partition.substring(colon + 1))));
        } catch (NumberFormatException e) {
          // a member of another version: nothing warm from it
        }
      }
    }
    return warm;
  }

  @Override
  public void onAssignment(Assignment assignment, ConsumerGroupMetadata metadata) {
    listener.joined();
  }

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public List<RebalanceProtocol> supportedProtocols() {
    // Cooperative first: a group whose members all list it rebalances incrementally.
    return List.of(RebalanceProtocol.COOPERATIVE, RebalanceProtocol.EAGER);
  }

  /** A member of the group: its id, the key it is ordered by, and what it says of itself. */
  private record Member(String id, String order, Subscription subscription, Set<TopicPartition> warm) {
    int generation() {
      return subscription.generationId().orElse(-1);
    }
  }

  @Override
  public GroupAssignment assign(Cluster metadata, GroupSubscription groupSubscription) {
    List<Member> members = new ArrayList<>();
    groupSubscription.groupSubscription().forEach((id, subscription) ->
        members.add(new Member(id, subscription.groupInstanceId().orElse(id), subscription, warm(subscription))));
    members.sort(Comparator.comparing(Member::order).thenComparing(Member::id));

    Map<String, Integer> partitionsByTopic = new TreeMap<>();
    for (Member member : members) {
      for (String topic : member.subscription().topics()) {
        List<PartitionInfo> partitions = metadata.partitionsForTopic(topic);
        if (!partitions.isEmpty()) {
          partitionsByTopic.put(topic, partitions.size());
        }
      }
    }
    Map<TopicPartition, Member> owners = owners(members);
    Set<TopicPartition> claimed = claimed(members);

    Map<String, List<TopicPartition>> assigned = new HashMap<>();
    members.forEach(member -> assigned.put(member.id(), new ArrayList<>()));
    Map<String, Integer> extras = new HashMap<>();
    partitionsByTopic.forEach((topic, count) -> {
      List<Member> subscribed = members.stream().filter(m -> m.subscription().topics().contains(topic)).toList();
      assignTopic(topic, count, subscribed, owners, claimed, extras, assigned);
    });

    Map<String, Assignment> assignments = new HashMap<>();
    assigned.forEach((member, partitions) -> assignments.put(member, new Assignment(partitions)));
    return new GroupAssignment(assignments);
  }

  /** Each partition's valid owner: the one member that claims it in the latest generation that claims it. */
  private static Map<TopicPartition, Member> owners(List<Member> members) {
    Map<TopicPartition, List<Member>> claimants = new HashMap<>();
    for (Member member : members) {
      member.subscription().ownedPartitions()
          .forEach(partition -> claimants.computeIfAbsent(partition, p -> new ArrayList<>()).add(member));
    }
    Map<TopicPartition, Member> owners = new HashMap<>();
    claimants.forEach((partition, claiming) -> {
      int latest = claiming.stream().mapToInt(Member::generation).max().orElseThrow();
      List<Member> latestClaims = claiming.stream().filter(m -> m.generation() == latest).toList();
      if (latestClaims.size() == 1) {
        owners.put(partition, latestClaims.get(0));
      }
    });
    return owners;
  }

  /** Every partition some member says it owns, whether the claim stands or not. */
  private static Set<TopicPartition> claimed(List<Member> members) {
    Set<TopicPartition> claimed = new HashSet<>();
    members.forEach(member -> claimed.addAll(member.subscription().ownedPartitions()));
    return claimed;
  }

  private static void assignTopic(String topic, int count, List<Member> members, Map<TopicPartition, Member> owners,
                                  Set<TopicPartition> claimed, Map<String, Integer> extras,
                                  Map<String, List<TopicPartition>> assigned) {
    if (members.isEmpty()) {
      return;
    }
    Map<String, Integer> quota = quotas(count, members, extras);
    List<TopicPartition> partitions = new ArrayList<>();
    for (int p = 0; p < count; p++) {
      partitions.add(new TopicPartition(topic, p));
    }
    Map<String, List<TopicPartition>> empty = new HashMap<>();
    members.forEach(member -> empty.put(member.id(), new ArrayList<>()));
    Map<TopicPartition, String> home = new HashMap<>();
    giveOut(partitions, members, quota, Map.of(), empty, false).forEach((member, given) -> given.forEach(p -> home.put(p, member)));

    // Each member keeps what it owns up to its share, its home partitions first.
    Map<String, List<TopicPartition>> result = new HashMap<>();
    Set<TopicPartition> kept = new HashSet<>();
    for (Member member : members) {
      List<TopicPartition> owned = new ArrayList<>(partitions.stream()
          .filter(p -> member.equals(owners.get(p))).toList());
      owned.sort(Comparator.comparing((TopicPartition p) -> !member.id().equals(home.get(p))));
      List<TopicPartition> keeps = owned.subList(0, Math.min(quota.get(member.id()), owned.size()));
      result.put(member.id(), new ArrayList<>(keeps));
      kept.addAll(keeps);
    }
    // The rest goes to the members below their share. One still owned by a member (who revokes it
    // now) waits for the next round.
    List<TopicPartition> free = partitions.stream().filter(p -> !kept.contains(p) && !claimed.contains(p)).toList();
    giveOut(free, members, quota, home, result, true).forEach((member, given) -> assigned.get(member).addAll(given));
  }

  /**
   * Gives each partition to a member below its share that keeps it warm (with {@code warmFirst}:
   * it takes the partition over without a restore), else to its home member if that one is below its share, the others in
   * turn to the members below theirs; answers {@code given} with them added.
   */
  private static Map<String, List<TopicPartition>> giveOut(List<TopicPartition> partitions, List<Member> members,
                                                           Map<String, Integer> quota, Map<TopicPartition, String> home,
                                                           Map<String, List<TopicPartition>> given, boolean warmFirst) {
    List<TopicPartition> left = new ArrayList<>();
    for (TopicPartition partition : partitions) {
      String member = members.stream()
          .filter(m -> warmFirst && m.warm().contains(partition) && given.get(m.id()).size() < quota.get(m.id()))
          .map(Member::id).findFirst().orElse(home.get(partition));
      if (member != null && given.get(member).size() < quota.get(member)) {
        given.get(member).add(partition);
      } else {
        left.add(partition);
      }
    }
    int next = 0;
    for (TopicPartition partition : left) {
      for (int tried = 0; tried < members.size(); tried++) {
        String member = members.get((next + tried) % members.size()).id();
        if (given.get(member).size() < quota.get(member)) {
          given.get(member).add(partition);
          next = (next + tried + 1) % members.size();
          break;
        }
      }
    }
    return given;
  }

  /**
   * Each member's share of the topic: the floor, and one more for as many members as the division
   * leaves over: those with the fewest extras from earlier topics, then in the members' order. It
   * depends on the members alone, so a group whose members stay keeps its shares.
   */
  private static Map<String, Integer> quotas(int count, List<Member> members, Map<String, Integer> extras) {
    int floor = count / members.size();
    int over = count % members.size();
    List<Member> byExtras = new ArrayList<>(members);
    byExtras.sort(Comparator.comparingInt(m -> extras.getOrDefault(m.id(), 0)));  // stable: ties in members' order
    Map<String, Integer> quota = new HashMap<>();
    for (int i = 0; i < byExtras.size(); i++) {
      Member member = byExtras.get(i);
      if (i < over) {
        quota.put(member.id(), floor + 1);
        extras.merge(member.id(), 1, Integer::sum);
      } else {
        quota.put(member.id(), floor);
      }
    }
    return quota;
  }
}
