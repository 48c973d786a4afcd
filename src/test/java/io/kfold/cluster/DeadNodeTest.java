package io.kfold.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.KfoldProcess;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

import static org.assertj.core.api.Assertions.assertThat;

/** A node killed with SIGKILL leaves no claim behind that looks live. */
@ExtendWith(TestBroker.class)
class DeadNodeTest {

  @Test
  @DisplayName("after kill -9 of one of two nodes, the other shows it dead in /v1/_cluster and claims every partition")
  void killedNodeShowsDead() throws Exception {
    List<KfoldProcess> nodes = ClusterClient.processes(TestNodes.newApp("dead"), "dead", 6000, Map.of()).subList(0, 2);
    KfoldProcess survivor = nodes.get(0);
    KfoldProcess killed = nodes.get(1);
    ExecutorService starter = Executors.newFixedThreadPool(nodes.size());
    try {
      ClusterClient.startAll(nodes, starter);
      killed.kill();

      long deadline = System.currentTimeMillis() + 60_000;
      JsonNode cluster = ClusterClient.get(survivor, "/v1/_cluster").path("nodes");
      while (!(status(cluster, killed).equals("dead") && partitions(cluster, survivor) == ClusterClient.ALL_PARTITIONS)) {
        assertThat(System.currentTimeMillis()).as("the killed node shows dead within 60 s; the survivor sees %s", cluster)
            .isLessThan(deadline);
        Thread.sleep(200);
        cluster = ClusterClient.get(survivor, "/v1/_cluster").path("nodes");
      }
      assertThat(status(cluster, survivor)).isEqualTo("live");
      assertThat(node(cluster, killed).path("deadSince").asText()).isNotBlank();
    } finally {
      starter.shutdownNow();
      for (KfoldProcess node : nodes) {
        node.stopIfAlive();
      }
    }
  }

  /** The entry of {@code node} in {@code /v1/_cluster}'s nodes, found by the URL it answers at. */
  private static JsonNode node(JsonNode cluster, KfoldProcess node) {
    for (JsonNode entry : cluster) {
      if (entry.path("url").asText().endsWith(":" + node.port())) {
        return entry;
      }
    }
    return com.fasterxml.jackson.databind.node.MissingNode.getInstance();
  }

  private static String status(JsonNode cluster, KfoldProcess node) {
    return node(cluster, node).path("status").asText("absent");
  }

  private static int partitions(JsonNode cluster, KfoldProcess node) {
    return node(cluster, node).path("partitions").size();
  }
}
