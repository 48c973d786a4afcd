package io.kfold.cluster;

import io.kfold.cluster.NodeDirectory.Claim;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * The claims of the nodes topic, in the order they were written, and what they say: which node
 * folds a partition, and which nodes are live. Bookkeeping only: the node directory reads the
 * topic and hands each record over.
 *
 * <p>A node publishes a claim each time the group gives it a new generation, so a claim is dead
 * once another node claims a later generation after it: the group formed that generation without
 * it (it died, or it was left behind and claims again soon). Only a later claim counts, not an
 * earlier one of a higher generation: when the group starts its generations over (it was deleted,
 * or expired while empty), the claims of dead nodes of its former life must not kill the new ones.
 * A node that has not joined yet claims no generation; it is dead once the group forms a
 * generation later than any it saw without it. A dead node stays in view for a while, so that an
 * operator sees it went, then is dropped.
 *
 * <p>Written by one thread (the directory's), read by any: every change replaces an immutable snapshot.
 */
public final class ClusterView {

  /** A node as its latest claim shows it; {@code deadSince} is null while it is live. */
  public record Node(Claim claim, Instant deadSince) {
    public boolean live() {
      return deadSince == null;
    }
  }

  /**
   * A node's latest claim, and the last generation it belongs to: its own, or for a node that has
   * not joined yet the latest one claimed when it appeared.
   */
  private record Tracked(Claim claim, int generation, Instant deadSince) {
    Tracked dead(Instant at) {
      return deadSince == null ? new Tracked(claim, generation, at) : this;
    }
  }

  private final Clock clock;
  private final Duration keepDead;
  private volatile Map<String, Tracked> tracked = Map.of();
  /** The latest generation any claim has shown, also of nodes dropped since. */
  private int latest = -1;

  /** @param keepDead how long a dead node stays in the view before it is dropped */
  ClusterView(Clock clock, Duration keepDead) {
    this.clock = clock;
    this.keepDead = keepDead;
  }

  /** A node wrote a claim, at {@code at} (the record's time, which a dead node's time is taken from). */
  synchronized void claimed(Claim claim, Instant at) {
    Map<String, Tracked> next = new HashMap<>();
    Instant now = clock.instant();
    tracked.forEach((name, node) -> {
      if (!name.equals(claim.node()) && !dropped(node.deadSince(), now)) {
        next.put(name, node.generation() < claim.generation() ? node.dead(at) : node);
      }
    });
    next.put(claim.node(), new Tracked(claim, claim.generation() >= 0 ? claim.generation() : latest, null));
    latest = Math.max(latest, claim.generation());
    tracked = Map.copyOf(next);
  }

  /** A node withdrew its claim (it stopped cleanly). */
  synchronized void withdrawn(String node) {
    Map<String, Tracked> next = new HashMap<>(tracked);
    next.remove(node);
    tracked = Map.copyOf(next);
  }

  /** The nodes in view, live or dead, by name. */
  Map<String, Node> nodes() {
    Instant now = clock.instant();
    Map<String, Node> nodes = new HashMap<>();
    tracked.forEach((name, node) -> {
      if (!dropped(node.deadSince(), now)) {
        nodes.put(name, new Node(node.claim(), node.deadSince()));
      }
    });
    return Map.copyOf(nodes);
  }

  /**
   * The claim of the live node that folds the partition; empty while none claims it. A dead node's
   * partitions have no owner until the group gives them to another node and it claims them.
   */
  Optional<Claim> owner(String partition) {
    return live().filter(c -> c.partitions().contains(partition)).max(Comparator.comparingInt(Claim::generation));
  }

  /** The claims of the latest generation: the nodes the group is made of now. */
  List<Claim> latestGeneration() {
    int newest = live().mapToInt(Claim::generation).max().orElse(-1);
    return live().filter(c -> c.generation() == newest).toList();
  }

  private Stream<Claim> live() {
    return tracked.values().stream().filter(node -> node.deadSince() == null).map(Tracked::claim);
  }

  private boolean dropped(Instant deadSince, Instant now) {
    return deadSince != null && !now.isBefore(deadSince.plus(keepDead));
  }
}
