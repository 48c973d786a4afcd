package io.kfold.cluster;

import io.kfold.Await;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.WebClient;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Three nodes on three types of four partitions each: each node folds its share of every type, a
 * node that stops moves only its own partitions while the others keep folding and taking writes,
 * and a node that comes back under its name gets its partitions back.
 */
@ExtendWith(TestBroker.class)
class BalancedAssignmentTest {

  private static final List<String> TYPES = List.of("orders", "shipments", "users");
  private static final String PLACE =
      "{\"type\":\"place\",\"payload\":{\"customerEmail\":\"a@b.c\",\"items\":[{\"sku\":\"x\",\"quantity\":1,\"price\":5}]}}";

  @Test
  @DisplayName("three nodes fold one or two partitions of each type and four in all; one that stops moves only its own,"
      + " the others keep theirs and their entities take writes throughout; back under its name, it gets them back")
  void balancedAndIncremental() throws Exception {
    Vertx vertx = Vertx.vertx();
    String app = TestNodes.newApp("balanced");
    List<NodeConfig> configs = new ArrayList<>();
    for (String name : List.of("a", "b", "c")) {
      configs.add(config(app, name, TestNodes.tempDir("balanced-" + name)));
    }
    List<NodeRuntime> nodes = new ArrayList<>();
    WebClient client = WebClient.create(vertx);
    ExecutorService writer = Executors.newSingleThreadExecutor();
    AtomicBoolean stopWriting = new AtomicBoolean();
    try {
      for (NodeConfig config : configs) {
        nodes.add(NodeRuntime.start(vertx, config).await(60, TimeUnit.SECONDS));
      }
      Await.until("three nodes share the twelve partitions", () -> shared(nodes, 12));
      Map<Integer, Set<TopicPartition>> before = new HashMap<>();
      for (int n = 0; n < 3; n++) {
        Set<TopicPartition> folded = nodes.get(n).progress().lag().keySet();
        before.put(n, Set.copyOf(folded));
        assertThat(folded).as("partitions of node %d", n).hasSize(4);
        for (String type : TYPES) {
          assertThat(ofType(folded, configs.get(0), type)).as("partitions of %s on node %d: %s", type, n, folded)
              .isBetween(1L, 2L);
        }
      }

      // Orders that nodes a and b fold, placed through their owner, then commented on while c stops.
      Ownership ownership = new Ownership(configs.get(0), Map.of("orders", 4), nodes.get(0).progress());
      Map<String, NodeRuntime> ownerOf = new HashMap<>();
      for (int i = 0; ownerOf.size() < 8; i++) {
        TopicPartition partition = ownership.partition("orders", "o" + i);
        for (int n = 0; n < 2; n++) {
          if (before.get(n).contains(partition)) {
            ownerOf.put("o" + i, nodes.get(n));
          }
        }
      }
      for (Map.Entry<String, NodeRuntime> order : ownerOf.entrySet()) {
        assertThat(command(client, order.getValue(), order.getKey(), PLACE).status()).isEqualTo(200);
      }
      long takenFromA = nodes.get(0).progress().partitionsTakenAway.sum();
      long takenFromB = nodes.get(1).progress().partitionsTakenAway.sum();
      List<String> refused = new CopyOnWriteArrayList<>();
      AtomicInteger written = new AtomicInteger();
      Future<?> writes = writer.submit(() -> {
        while (!stopWriting.get()) {
          for (Map.Entry<String, NodeRuntime> order : ownerOf.entrySet()) {
            Reply reply = command(client, order.getValue(), order.getKey(),
                "{\"type\":\"comment\",\"payload\":{\"text\":\"c" + written.get() + "\"}}");
            if (reply.status() != 200) {
              refused.add(order.getKey() + ": " + reply.status() + " " + reply.body());
            }
            written.incrementAndGet();
          }
        }
        return null;
      });
      Await.until("writes under way", () -> written.get() >= 8);

      nodes.get(2).stop().await(60, TimeUnit.SECONDS);
      nodes.remove(2);  // stopped: not stopped again at the end
      Await.until("two nodes share the twelve partitions", () -> shared(nodes, 12));
      int writtenWhenMoved = written.get();
      Await.until("writes go on after the move", () -> written.get() >= writtenWhenMoved + 8);
      stopWriting.set(true);
      writes.get(60, TimeUnit.SECONDS);

      assertThat(refused).as("writes to entities of partitions that did not move").isEmpty();
      for (int n = 0; n < 2; n++) {
        Set<TopicPartition> folded = nodes.get(n).progress().lag().keySet();
        assertThat(folded).as("node %d keeps its partitions", n).containsAll(before.get(n));
        Set<TopicPartition> taken = new HashSet<>(folded);
        taken.removeAll(before.get(n));
        assertThat(before.get(2)).as("node %d takes partitions of the stopped node only", n).containsAll(taken);
        for (String type : TYPES) {
          assertThat(ofType(folded, configs.get(0), type)).as("partitions of %s on node %d: %s", type, n, folded)
              .isEqualTo(2L);
        }
      }
      assertThat(nodes.get(0).progress().partitionsTakenAway.sum()).as("partitions taken from node a")
          .isEqualTo(takenFromA);
      assertThat(nodes.get(1).progress().partitionsTakenAway.sum()).as("partitions taken from node b")
          .isEqualTo(takenFromB);

      // Back under its name, the node gets its own partitions back, and the others give up only those.
      nodes.add(NodeRuntime.start(vertx, configs.get(2)).await(60, TimeUnit.SECONDS));
      Await.until("three nodes share the twelve partitions again", () -> shared(nodes, 12));
      for (int n = 0; n < 3; n++) {
        assertThat(nodes.get(n).progress().lag().keySet()).as("partitions of node %d", n).isEqualTo(before.get(n));
      }
      assertThat(nodes.get(0).progress().partitionsTakenAway.sum() - takenFromA
          + nodes.get(1).progress().partitionsTakenAway.sum() - takenFromB)
          .as("partitions the returning node took from the others").isEqualTo(4);
    } finally {
      stopWriting.set(true);
      writer.shutdownNow();
      client.close();
      for (NodeRuntime node : nodes) {
        node.stop().await(60, TimeUnit.SECONDS);
      }
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  /**
   * A node of the shipped types without the views (so three topics of four partitions), under a
   * static name, with a short session timeout for the rebalances.
   */
  private static NodeConfig config(String app, String name, Path dataDir) {
    Map<String, String> env = TestNodes.withSection(TestNodes.quickRebalances(TestNodes.env(app, dataDir)), dataDir,
        "views", "[]");
    env.put("KFOLD_KAFKA_GROUP_INSTANCE_ID", app + "-" + name);
    return NodeConfig.load(env);
  }

  /** Whether the nodes fold {@code partitions} between them, each one a share, all caught up. */
  private static boolean shared(List<NodeRuntime> nodes, int partitions) {
    Set<TopicPartition> all = new HashSet<>();
    int total = 0;
    for (NodeRuntime node : nodes) {
      if (!node.progress().caughtUp() || node.progress().lag().isEmpty()) {
        return false;
      }
      all.addAll(node.progress().lag().keySet());
      total += node.progress().lag().size();
    }
    return all.size() == partitions && total == partitions;
  }

  private static long ofType(Set<TopicPartition> partitions, NodeConfig config, String type) {
    return partitions.stream().filter(p -> p.topic().equals(config.eventsTopic(type))).count();
  }

  private static Reply command(WebClient client, NodeRuntime node, String order, String body) throws Exception {
    return TestNodes.call(client, HttpMethod.POST, node.httpPort(), "/v1/orders/" + order + "/commands", body, Map.of());
  }
}
