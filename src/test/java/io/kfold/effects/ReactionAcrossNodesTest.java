package io.kfold.effects;

import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.WebClient;
import org.apache.kafka.common.utils.Utils;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A reaction writes to an entity that another node may fold: the worker that delivers the change
 * runs where the source's changes partition is, the write is decided where the target's events
 * partition is.
 */
@ExtendWith(TestBroker.class)
class ReactionAcrossNodesTest {

  private static final int PARTITIONS = 4;

  @Test
  @DisplayName("a reaction whose target entity another node folds is written there, not refused or dead-lettered")
  void reactionReachesTheTargetsNode() throws Exception {
    String app = TestNodes.newApp("react2");
    String worker = "request:\n  kind: command\n  entities: [users]\n"
        + "  retry: { attempts: 3, initialDelayMs: 50, maxDelayMs: 200 }\n"
        + "  target:\n    entity: shipments\n    id: \"{{state.to}}\"\n"
        + "    events:\n      - type: Requested\n        payload: { from: \"{{key}}\" }\n";
    Vertx vertxA = Vertx.vertx();
    Vertx vertxB = Vertx.vertx();
    WebClient client = WebClient.create(vertxA);
    List<NodeRuntime> nodes = new ArrayList<>();
    try {
      nodes.add(TestNodes.startCaughtUp(vertxA, NodeConfig.load(TestNodes.quickRebalances(TestNodes.envWithEffects(app,
          TestNodes.tempDir("react2-a"), worker)))));
      nodes.add(TestNodes.startCaughtUp(vertxB, NodeConfig.load(TestNodes.quickRebalances(TestNodes.envWithEffects(app,
          TestNodes.tempDir("react2-b"), worker)))));
      for (NodeRuntime node : nodes) {
        TestNodes.awaitCaughtUp(node);
      }
      // Every pair of source and target partitions: with two nodes, some targets are folded by
      // the node that does not deliver their source's change.
      List<String> targets = new ArrayList<>();
      for (int source = 0; source < PARTITIONS; source++) {
        for (int target = 0; target < PARTITIONS; target++) {
          String from = idIn("s", source);
          String to = idIn("t" + source + "-", target);
          targets.add(to);
          Reply written = TestNodes.call(client, HttpMethod.POST, nodes.get(0).httpPort(), "/v1/users/" + from + "/events",
              "{\"events\":[{\"type\":\"Asked\",\"payload\":{\"to\":\"" + to + "\"}}]}", Map.of());
          assertThat(written.status()).as("%s: %s", from, written.body()).isEqualTo(200);
        }
      }
      for (String target : targets) {
        Reply shipment = TestNodes.call(client, HttpMethod.GET, nodes.get(0).httpPort(),
            "/v1/shipments/" + target + "?minVersion=1&timeoutMs=20000", null, Map.of());
        assertThat(shipment.status()).as("shipment %s: %s", target, shipment.body()).isEqualTo(200);
        assertThat(shipment.body().path("version").asLong()).isEqualTo(1);
      }
      for (NodeRuntime node : nodes) {
        Reply effects = TestNodes.call(client, HttpMethod.GET, node.httpPort(), "/v1/_effects", null, Map.of());
        assertThat(effects.body().path("workers").path("request").path("deadLettered").asLong())
            .as("dead letters on node %d", node.httpPort()).isZero();
      }
    } finally {
      client.close();
      for (NodeRuntime node : nodes) {
        node.stop().await(60, TimeUnit.SECONDS);
      }
      vertxA.close().await(30, TimeUnit.SECONDS);
      vertxB.close().await(30, TimeUnit.SECONDS);
    }
  }

  /** The first id with this prefix that Kafka's default partitioner puts in {@code partition}. */
  private static String idIn(String prefix, int partition) {
    for (int i = 0; ; i++) {
      String id = prefix + i;
      if (Utils.toPositive(Utils.murmur2(id.getBytes(StandardCharsets.UTF_8))) % PARTITIONS == partition) {
        return id;
      }
    }
  }
}
