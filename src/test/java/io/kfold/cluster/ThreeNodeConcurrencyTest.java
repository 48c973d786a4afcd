package io.kfold.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.ContendedOrders;
import io.kfold.ContendedOrders.Answer;
import io.kfold.config.NodeConfig;
import io.kfold.KfoldProcess;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.vertx.core.Vertx;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The contended-orders run of {@code ConcurrentCommandsTest} on three kfold processes that share
 * the partitions: each client reads and writes through the nodes in turn, so most requests reach a
 * node that does not fold the order and are forwarded to the one that does.
 */
@ExtendWith(TestBroker.class)
class ThreeNodeConcurrencyTest {

  private static final Logger LOG = LoggerFactory.getLogger(ThreeNodeConcurrencyTest.class);

  @Test
  @DisplayName("32 clients, 10 orders, If-Match, through three nodes in turn: contiguous versions, no version twice, "
      + "every 200 in the log once, every 409 appended nothing, and every node answers every order alike")
  void hammerTheSameOrdersThroughThreeNodes() throws Exception {
    String app = TestNodes.newApp("three");
    NodeConfig config = TestNodes.config(app, TestNodes.tempDir("three-config"));
    List<KfoldProcess> nodes = ClusterClient.processes(app, "three", 10_000, Map.of());
    Vertx vertx = Vertx.vertx();
    ExecutorService starter = Executors.newFixedThreadPool(nodes.size());
    try {
      List<Future<?>> started = new ArrayList<>();
      for (KfoldProcess node : nodes) {
        started.add(starter.submit(() -> {
          node.start();
          return null;
        }));
      }
      for (Future<?> start : started) {
        start.get(150, TimeUnit.SECONDS);
      }
      ClusterClient.awaitSpread(nodes, Duration.ofSeconds(90));

      List<Answer> answers;
      try (ContendedOrders orders = new ContendedOrders(vertx, nodes.stream().map(KfoldProcess::port).toList())) {
        orders.place();
        long began = System.currentTimeMillis();
        answers = orders.run();
        LOG.info("{} commands through three nodes in {} ms, {} accepted", answers.size(),
            System.currentTimeMillis() - began, answers.stream().filter(a -> a.status() == 200).count());
      }
      ContendedOrders.assertLogAgrees(answers, config.eventsTopic("orders"));

      Map<String, Long> reached = ContendedOrders.versionsReached(answers);
      for (int o = 0; o < ContendedOrders.ORDERS; o++) {
        String order = ContendedOrders.order(o);
        String read = "/v1/orders/" + order + "?minVersion=" + reached.get(order) + "&timeoutMs=10000";
        JsonNode first = ClusterClient.get(nodes.get(0), read);
        assertThat(first.path("version").asLong()).as("version of %s", order).isEqualTo(reached.get(order));
        assertThat(first.path("state").path("comments")).as("comments of %s", order).hasSize((int) (reached.get(order) - 1));
        for (KfoldProcess node : nodes.subList(1, nodes.size())) {
          JsonNode other = ClusterClient.get(node, read);
          assertThat(other.path("version")).as("version of %s through the node on port %d", order, node.port())
              .isEqualTo(first.path("version"));
          assertThat(other.path("state")).as("state of %s through the node on port %d", order, node.port())
              .isEqualTo(first.path("state"));
        }
      }
    } finally {
      starter.shutdownNow();
      ClusterClient.stopAll(nodes);
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }
}
