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

/**
 * The claims of the nodes topic, in the order they were written, and what they say: which node
 * folds a partition, and which nodes are live. Bookkeeping only: the node directory reads the
 * topic and hands each record over.
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

  private final Clock clock;
  private final Duration keepDead;
  private volatile Map<String, Node> nodes = Map.of();

  /** @param keepDead how long a dead node stays in the view before it is dropped */
  ClusterView(Clock clock, Duration keepDead) {
    this.clock = clock;
    this.keepDead = keepDead;
  }

  /** A node wrote a claim, at {@code at} (the record's time). */
  synchronized void claimed(Claim claim, Instant at) {
    Map<String, Node> next = new HashMap<>(nodes);
    next.put(claim.node(), new Node(claim, null));
    nodes = Map.copyOf(next);
  }

  /** A node withdrew its claim (it stopped cleanly). */
  synchronized void withdrawn(String node) {
    Map<String, Node> next = new HashMap<>(nodes);
    next.remove(node);
    nodes = Map.copyOf(next);
  }

  /** The nodes in view, live or dead. */
  Map<String, Node> nodes() {
    return nodes;
  }

  /** The claim of the node that folds the partition; empty while nobody claims it. */
  Optional<Claim> owner(String partition) {
    return nodes.values().stream().map(Node::claim).filter(c -> c.partitions().contains(partition))
        .max(Comparator.comparingInt(Claim::generation));
  }

  /** The claims of the latest generation: the nodes the group is made of now. */
  List<Claim> latestGeneration() {
    int latest = nodes.values().stream().mapToInt(n -> n.claim().generation()).max().orElse(-1);
    return nodes.values().stream().map(Node::claim).filter(c -> c.generation() == latest).toList();
  }
}
