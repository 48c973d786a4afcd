package io.kfold.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.KfoldProcess;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A node killed with SIGKILL leaves no claim behind that looks live, and does not hold its partitions
 * until its session times out: with the default session timeout of 45 s, the survivor sees its
 * heartbeats in the node directory stop, removes it from the group and takes its partitions over
 * well before the group would have noticed by itself.
 */
@ExtendWith(TestBroker.class)
class DeadNodeTest {

  /** kfold's default, which the broker's group coordinator would wait out without the directory's heartbeats. */
  private static final int SESSION_TIMEOUT_MS = 45_000;

  @Test
  @DisplayName("after kill -9 of one of two nodes with the default session timeout, the other shows it dead in"
      + " /v1/_cluster and claims every partition before the session would time out")
  void killedNodeShowsDead() throws Exception {
    List<KfoldProcess> nodes = ClusterClient.processes(TestNodes.newApp("dead"), "dead", SESSION_TIMEOUT_MS, Map.of())
        .subList(0, 2);
    KfoldProcess survivor = nodes.get(0);
    KfoldProcess killed = nodes.get(1);
    ExecutorService starter = Executors.newFixedThreadPool(nodes.size());
    try {
      ClusterClient.startAll(nodes, starter);
      killed.kill();

      // Half the session timeout: only the removal by the survivor can move the partitions by then.
      long killedAt = System.currentTimeMillis();
      long deadline = killedAt + SESSION_TIMEOUT_MS / 2;
      JsonNode cluster = ClusterClient.get(survivor, "/v1/_cluster").path("nodes");
      while (!(status(cluster, killed).equals("dead") && partitions(cluster, survivor) == ClusterClient.ALL_PARTITIONS)) {
        assertThat(System.currentTimeMillis()).as("the killed node shows dead and its partitions move before the"
            + " session times out; the survivor sees %s", cluster).isLessThan(deadline);
        Thread.sleep(200);
        cluster = ClusterClient.get(survivor, "/v1/_cluster").path("nodes");
      }
      LoggerFactory.getLogger(DeadNodeTest.class).info("the survivor folds every partition {} ms after the kill",
          System.currentTimeMillis() - killedAt);
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
