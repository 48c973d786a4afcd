package io.kfold.effects;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.kfold.log.KafkaClients;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.WebClient;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.GroupState;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static io.kfold.effects.HttpEffectTest.await;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Parking is the dead-letter topic's, not a node's: every node follows it, the node that owns an
 * entity's changes partition keeps it parked, and any node can be asked to replay it.
 */
@ExtendWith(TestBroker.class)
class ParkingAcrossNodesTest {

  /** A node with a Vert.x of its own, as a separate process would have: event bus requests stay on it. */
  private record Node(Vertx vertx, NodeRuntime kfold) {
    void stop() throws Exception {
      kfold.stop().await(60, TimeUnit.SECONDS);
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  @Test
  @DisplayName("a parked entity stays parked when its partition moves to another node, and a replay asked on a node that does not own it delivers its changes in order")
  void parkingFollowsThePartition() throws Exception {
    Vertx vertx = Vertx.vertx();
    TargetServer server = new TargetServer(vertx);
    server.refuse = body -> body.getJsonObject("event").getJsonObject("payload").getBoolean("poison", false);
    String app = TestNodes.newApp("parkmove");
    String worker = "hook:\n  kind: http\n  entities: [users]\n  timeoutMs: 1000\n"
        + "  retry: { attempts: 3, initialDelayMs: 10, maxDelayMs: 50 }\n"
        + "  target: { url: \"" + server.url() + "\" }\n";
    NodeConfig config = config(app, worker, "topics");
    List<Node> nodes = new ArrayList<>();
    WebClient client = WebClient.create(vertx);
    try (Admin admin = Admin.create(KafkaClients.admin(config.kafka(), app + "-test"))) {
      // One partition per topic: exactly one node's worker owns the entity at any time.
      nodes.add(start(app, worker, "a"));
      nodes.add(start(app, worker, "b"));
      Node owner = awaitOwner(client, admin, config, nodes);

      produce(config, "x", "{\"n\":1,\"poison\":true}", "{\"n\":2}");
      await("x:1 dead-lettered and x:2 parked behind it", () -> parkedIds(client, owner, "x").size() == 2);

      owner.stop();
      nodes.remove(owner);
      Node heir = nodes.get(0);
      await("the other node's worker takes the partition", () -> stats(client, heir).path("partitions").asInt() == 1);
      produce(config, "x", "{\"n\":3}");
      await("x:3 parked or delivered", () -> parkedIds(client, heir, "x").contains("x:3")
          || server.appliedVersions.containsKey("x"));
      assertThat(server.appliedVersions.getOrDefault("x", List.of())).as("nothing of x delivered past its dead letter")
          .isEmpty();
      assertThat(parkedIds(client, heir, "x")).containsExactly("x:1", "x:2", "x:3");

      server.refuse = body -> false;  // the target is fixed
      nodes.add(start(app, worker, "c"));
      Node current = awaitOwner(client, admin, config, nodes);
      Node asked = nodes.stream().filter(n -> n != current).findFirst().orElseThrow();
      Reply replayed = TestNodes.call(client, HttpMethod.POST, asked.kfold().httpPort(), "/v1/_effects/hook/parked/x/replay",
          null, Map.of());
      assertThat(replayed.status()).as("replay asked on the node that does not own x: %s", replayed.body()).isEqualTo(200);
      assertThat(replayed.body().path("replayed").asInt()).isEqualTo(3);
      assertThat(replayed.body().path("stillParked").asInt()).isZero();
      assertThat(server.appliedVersions.get("x")).containsExactly(1L, 2L, 3L);
      await("x released on every node", () -> nodes.stream().allMatch(node -> parkedIds(client, node, "x").isEmpty()));
    } finally {
      client.close();
      for (Node node : nodes) {
        node.stop();
      }
      server.close();
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  private static NodeConfig config(String app, String worker, String name) {
    Map<String, String> env = TestNodes.quickRebalances(TestNodes.envWithEffects(app, TestNodes.tempDir("parkmove-" + name), worker));
    env.put("KFOLD_KAFKA_PARTITIONS", "1");
    return NodeConfig.load(env);
  }

  private static Node start(String app, String worker, String name) throws Exception {
    Vertx vertx = Vertx.vertx();
    return new Node(vertx, TestNodes.startCaughtUp(vertx, config(app, worker, name)));
  }

  /** Waits until every node's worker has joined the group and one holds the partition; answers that one. */
  private static Node awaitOwner(WebClient client, Admin admin, NodeConfig config, List<Node> nodes) throws Exception {
    String group = config.effectGroup("hook");
    await("the workers of " + nodes.size() + " nodes share the partition", () -> {
      try {
        ConsumerGroupDescription description = admin.describeConsumerGroups(List.of(group)).all()
            .get(10, TimeUnit.SECONDS).get(group);
        int held = 0;
        for (Node node : nodes) {
          held += stats(client, node).path("partitions").asInt();
        }
        return description.groupState() == GroupState.STABLE && description.members().size() == nodes.size() && held == 1;
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    });
    return nodes.stream().filter(n -> stats(client, n).path("partitions").asInt() == 1).findFirst().orElseThrow();
  }

  private static JsonNode stats(WebClient client, Node node) {
    try {
      return TestNodes.call(client, HttpMethod.GET, node.kfold().httpPort(), "/v1/_effects", null, Map.of()).body()
          .path("workers").path("hook");
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  /** The ids of the entity's parked changes, as the node lists them. */
  private static List<String> parkedIds(WebClient client, Node node, String key) {
    try {
      JsonNode parked = TestNodes.call(client, HttpMethod.GET, node.kfold().httpPort(), "/v1/_effects/hook/parked", null,
          Map.of()).body();
      List<String> ids = new ArrayList<>();
      parked.path("parked").forEach(entity -> {
        if (entity.path("key").asText().equals(key)) {
          entity.path("events").forEach(event -> ids.add(event.path("id").asText()));
        }
      });
      return ids;
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  private static void produce(NodeConfig config, String key, String... payloads) {
    try (KafkaProducer<byte[], byte[]> producer = TestNodes.plainProducer()) {
      for (String payload : payloads) {
        producer.send(new ProducerRecord<>(config.eventsTopic("users"), key.getBytes(StandardCharsets.UTF_8),
            payload.getBytes(StandardCharsets.UTF_8)));
      }
    }
  }
}
