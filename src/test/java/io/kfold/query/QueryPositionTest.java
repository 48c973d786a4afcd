package io.kfold.query;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.OpenApiContract;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.kfold.types.Envelopes;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.WebClient;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.utils.Utils;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Read your writes for queries ({@code ?minPosition=}), with a real broker and two nodes: a list
 * asked with a write's position, through the node that does not fold the written entity, holds the
 * write (an order placed by a command of the shipped orders type, listed by its customer; a user
 * written by an outside producer, listed by its email); a position the fold does not reach in time answers 504, a malformed one 400.
 */
@ExtendWith(TestBroker.class)
class QueryPositionTest {

  /** Orders placed, then listed by customer, through the node that does not fold them. */
  private static final int PLACE_ROUNDS = 200;
  /** Users written by an outside producer, then listed by email. */
  private static final int ROUNDS = 100;

  @Test
  @DisplayName("two nodes: place 200 orders through the node that does not fold them and list the customer's orders"
      + " with the command's position through it, and the same for 100 users an outside producer writes: the list holds"
      + " the write; 504 past the log's end, 400 for a malformed position")
  void readYourWrites() throws Exception {
    String app = TestNodes.newApp("qpos");
    Vertx vertxA = Vertx.vertx();
    Vertx vertxB = Vertx.vertx();
    WebClient client = WebClient.create(vertxA);
    List<NodeRuntime> nodes = new ArrayList<>();
    try (KafkaProducer<byte[], byte[]> producer = TestNodes.plainProducer()) {
      // B joins the group A is in: with quick rebalances A hears of it within a second.
      NodeConfig config = TestNodes.quickRebalancesConfig(app, TestNodes.tempDir("qpos-a"));
      nodes.add(TestNodes.startCaughtUp(vertxA, config));
      nodes.add(TestNodes.startCaughtUp(vertxB, TestNodes.quickRebalancesConfig(app, TestNodes.tempDir("qpos-b"))));
      QueryApiTest.awaitSplitAndKnown(client, nodes, config);
      String topic = config.eventsTopic("users");
      int partitions = config.kafka().partitions();
      OpenApiContract api = OpenApiContract.parse(client.get(nodes.get(0).httpPort(), "127.0.0.1", "/openapi.yaml")
          .send().await(10, TimeUnit.SECONDS).bodyAsString());

      // Through HTTP, the shipped orders type: the node asked forwards the command to the node that
      // folds the order, and the query to the nodes that fold the orders partitions.
      String orders = config.eventsTopic("orders");
      for (int i = 0; i < PLACE_ROUNDS; i++) {
        String order = "h" + i;
        TopicPartition partition = new TopicPartition(orders, partitionOf(order, config.kafka().partitions()));
        NodeRuntime through = notFolding(nodes, partition);
        String email = order + "@y.example";
        Reply placed = TestNodes.call(client, HttpMethod.POST, through.httpPort(), "/v1/orders/" + order + "/commands",
            "{\"type\": \"place\", \"payload\": {\"customerEmail\": \"" + email + "\", \"items\": [{\"sku\": \"s\","
                + " \"quantity\": 1, \"price\": 5}]}}", Map.of());
        assertThat(placed.status()).as("place %s: %s", order, placed.body()).isIn(200, 201);
        api.assertAnswer("POST", "/v1/{type}/{id}/commands", placed);
        String token = placed.body().path("position").asText();
        assertThat(Position.parse(token).topicPartition()).as("position of %s", order).isEqualTo(partition);
        assertThat(listed(client, through, "orders", "customer", email, token, api))
            .as("round %d: orders of %s through the node on %d, at the place command's position", i, email,
                through.httpPort())
            .containsExactly(order);
      }

      // Through an outside producer: the position is the record's own, and nothing has waited for the
      // fold before the query, so only minPosition makes the list hold the write.
      for (int i = 0; i < ROUNDS; i++) {
        String key = "o" + i;
        String email = key + "@y";
        RecordMetadata sent = producer.send(new ProducerRecord<>(topic, key.getBytes(StandardCharsets.UTF_8),
            Envelopes.toBytes(JsonNodeFactory.instance.objectNode().put("email", email)))).get(30, TimeUnit.SECONDS);
        NodeRuntime through = notFolding(nodes, new TopicPartition(topic, sent.partition()));
        String token = new Position(topic, sent.partition(), sent.offset()).token();
        assertThat(listed(client, through, "users", "email", email, token, api))
            .as("round %d: users with email %s through the node on %d, at the record's position", i, email,
                through.httpPort())
            .containsExactly(key);
      }

      // A position the log has not reached: the owner waits timeoutMs, then 504, also through the other node.
      for (NodeRuntime node : nodes) {
        String far = new Position(topic, 0, 1_000_000_000L).token();
        Reply late = TestNodes.call(client, HttpMethod.GET, node.httpPort(),
            "/v1/users?minPosition=" + far + "&timeoutMs=200", null, Map.of());
        assertThat(late.status()).as("far position through %d: %s", node.httpPort(), late.body()).isEqualTo(504);
        assertThat(late.contentType()).isEqualTo("application/problem+json");
        api.assertAnswer("GET", "/v1/{type}", late);
      }
      for (String bad : List.of("not-a-position", new Position(config.eventsTopic("orders"), 0, 5).token(),
          new Position(topic, partitions, 5).token())) {
        Reply reply = TestNodes.call(client, HttpMethod.GET, nodes.get(0).httpPort(),
            "/v1/users?minPosition=" + URLEncoder.encode(bad, StandardCharsets.UTF_8), null, Map.of());
        assertThat(reply.status()).as("minPosition=%s: %s", bad, reply.body()).isEqualTo(400);
        assertThat(reply.body().path("detail").asText()).as(bad).containsAnyOf("malformed position",
            "is not a position of users events");
        api.assertAnswer("GET", "/v1/{type}", reply);
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

  /** The keys of the entities whose index has this value, as the query with the position answers them. */
  private static Set<String> listed(WebClient client, NodeRuntime node, String type, String index, String value,
                                    String token, OpenApiContract api) throws Exception {
    String path = "/v1/" + type + "?" + index + "=" + URLEncoder.encode(value, StandardCharsets.UTF_8) + "&minPosition="
        + URLEncoder.encode(token, StandardCharsets.UTF_8) + "&timeoutMs=10000";
    Reply page = TestNodes.call(client, HttpMethod.GET, node.httpPort(), path, null, Map.of());
    assertThat(page.status()).as("%s: %s", path, page.body()).isEqualTo(200);
    api.assertAnswer("GET", "/v1/{type}", page);
    Set<String> keys = new TreeSet<>();
    for (JsonNode item : page.body().path("items")) {
      keys.add(item.path("key").asText());
    }
    return keys;
  }

  private static int partitionOf(String key, int partitions) {
    return Utils.toPositive(Utils.murmur2(key.getBytes(StandardCharsets.UTF_8))) % partitions;
  }

  /** The node that does not fold the partition (the split leaves each partition to one of the two). */
  private static NodeRuntime notFolding(List<NodeRuntime> nodes, TopicPartition partition) {
    return nodes.stream().filter(n -> !n.progress().folds(partition)).findFirst()
        .orElseThrow(() -> new AssertionError("both nodes fold " + partition));
  }
}
