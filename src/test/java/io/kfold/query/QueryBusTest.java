package io.kfold.query;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.kfold.types.Envelopes;
import io.vertx.core.Vertx;
import io.vertx.core.eventbus.Message;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.eventbus.ReplyFailure;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.client.WebClient;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The event-bus query {@code kfold.<type>.query} against a real broker and two nodes: each page is
 * the one {@code GET /v1/{type}} answers for the same parameters, byte for byte as JSON, over both
 * nodes' partitions; bad queries fail with 400, positions past the log with 504; and
 * {@code stale=true} answers from the standby copies this node keeps of the other node's partitions,
 * marked {@code Kfold-Stale: true}, over HTTP and on the bus alike.
 */
@ExtendWith(TestBroker.class)
class QueryBusTest {

  private static final int USERS = 120;

  @Test
  @DisplayName("two nodes: the bus query equals GET /v1/users page by page, fails as the HTTP API does, and answers"
      + " stale=true from standby copies, marked stale")
  void busQueryIsTheHttpQuery() throws Exception {
    String app = TestNodes.newApp("qbus");
    Vertx vertxA = Vertx.vertx();
    Vertx vertxB = Vertx.vertx();
    WebClient client = WebClient.create(vertxA);
    List<NodeRuntime> nodes = new ArrayList<>();
    try (KafkaProducer<byte[], byte[]> producer = TestNodes.plainProducer()) {
      // B joins the group A is in: with quick rebalances A hears of it within a second.
      NodeConfig config = TestNodes.quickRebalancesConfig(app, TestNodes.tempDir("qbus-a"));
      nodes.add(TestNodes.startCaughtUp(vertxA, config));
      nodes.add(TestNodes.startCaughtUp(vertxB, TestNodes.quickRebalancesConfig(app, TestNodes.tempDir("qbus-b"))));
      QueryApiTest.awaitSplitAndKnown(client, nodes, config);
      NodeRuntime a = nodes.get(0);

      // Users u0… with an email among seven (some none), written by an outside producer.
      Map<String, String> emails = new TreeMap<>();
      Map<Integer, Long> ends = new HashMap<>();
      List<Future<RecordMetadata>> sent = new ArrayList<>();
      for (int i = 0; i < USERS; i++) {
        ObjectNode patch = JsonNodeFactory.instance.objectNode().put("name", "user " + i);
        String email = i % 13 == 0 ? null : "p" + (i % 7) + "@x";
        if (email != null) {
          patch.put("email", email);
        }
        emails.put("u" + i, email);
        sent.add(producer.send(new ProducerRecord<>(config.eventsTopic("users"),
            ("u" + i).getBytes(StandardCharsets.UTF_8), Envelopes.toBytes(patch))));
      }
      for (Future<RecordMetadata> one : sent) {
        RecordMetadata metadata = one.get(30, TimeUnit.SECONDS);
        ends.merge(metadata.partition(), metadata.offset() + 1, Math::max);
      }
      awaitFolded(nodes, config, ends);
      List<String> everyone = new ArrayList<>(emails.keySet());
      List<String> p3 = emails.entrySet().stream().filter(e -> "p3@x".equals(e.getValue())).map(Map.Entry::getKey)
          .toList();

      // The same pages, member for member, through the bus and through HTTP, from the node on vertxA.
      Map<JsonObject, List<String>> queries = new java.util.LinkedHashMap<>();
      queries.put(new JsonObject().put("limit", 7), everyone);
      queries.put(new JsonObject().put("fields", "key").put("limit", 50), everyone);
      queries.put(new JsonObject().put("email", "p3@x").put("limit", 4), p3);
      queries.put(new JsonObject().put("email.from", "p2@x").put("email.to", "p5@x").put("limit", 1000), null);
      for (Map.Entry<JsonObject, List<String>> query : queries.entrySet()) {
        List<String> keys = new ArrayList<>();
        String after = null;
        for (int pages = 0; ; pages++) {
          assertThat(pages).as("pages of %s end", query.getKey()).isLessThan(USERS + 2);
          JsonObject message = query.getKey().copy();
          if (after != null) {
            message.put("after", after);
          }
          Message<JsonObject> bus = vertxA.eventBus().<JsonObject>request("kfold.users.query", message)
              .await(30, TimeUnit.SECONDS);
          Reply http = TestNodes.call(client, HttpMethod.GET, a.httpPort(), "/v1/users?" + queryString(message), null,
              Map.of());
          assertThat(http.status()).as("HTTP %s: %s", message, http.body()).isEqualTo(200);
          JsonNode busPage = Envelopes.parse(bus.body().toBuffer().getBytes());
          assertThat(busPage).as("bus page of %s", message).isEqualTo(http.body());
          assertThat(bus.headers().get("Kfold-Stale")).as("bus page of %s, no stale asked", message).isNull();
          busPage.path("items").forEach(item -> keys.add(item.path("key").asText()));
          if (busPage.path("next").isNull()) {
            break;
          }
          after = busPage.path("next").asText();
        }
        if (query.getValue() != null) {
          assertThat(keys).as("bus pages of %s: every match, over both nodes' partitions", query.getKey())
              .containsExactlyElementsOf(query.getValue());
        }
      }

      // Failures: the HTTP status as the failure code, the HTTP detail as the message.
      assertFailure(vertxA, "users", new JsonObject().put("nope", 1), 400,
          "'nope' names no index of users; its indexes are [email]");
      assertFailure(vertxA, "users", new JsonObject().put("limit", 0), 400, "limit is '0'");
      assertFailure(vertxA, "users", new JsonObject().put("after", "not-a-cursor"), 400,
          "'after' is not a cursor this API gave");
      assertFailure(vertxA, "users", new JsonObject().put("email", new JsonArray().add("a")), 400,
          "query member 'email' must be a string, a number or a boolean");
      assertFailure(vertxA, "users", new JsonObject().put("stale", "maybe"), 400, "stale is 'maybe'");
      assertFailure(vertxA, "users", new JsonObject().put("minPosition", "not-a-position"), 400, "malformed position");
      assertFailure(vertxA, "users", new JsonObject().put("timeoutMs", -1), 400, "timeoutMs must be a whole number");
      // A position the log has not reached: whichever node folds partition 0 waits, then 504.
      assertFailure(vertxA, "users", new JsonObject()
          .put("minPosition", new Position(config.eventsTopic("users"), 0, 1_000_000_000L).token())
          .put("timeoutMs", 200), 504, "");
      // A type that does not exist has no address: no handler, where HTTP answers 404.
      ReplyException noType = awaitFailure(vertxA, "nope", new JsonObject());
      assertThat(noType.failureType()).as("query of an unknown type").isEqualTo(ReplyFailure.NO_HANDLERS);
      // An unknown entity is the get's 404, through the same convention.
      ReplyException notFound = awaitFailure(vertxA.eventBus().<JsonObject>request("kfold.users.get",
          new JsonObject().put("key", "nobody")));
      assertThat(notFound.failureCode()).as("get of an unknown user: %s", notFound.getMessage()).isEqualTo(404);

      // stale=true: node A keeps warm copies of B's partitions (one standby replica, two nodes), so it
      // answers every partition itself, marked stale. Until A has read a copy to its end it asks B
      // (not marked), and a copy may lag: wait until the answer is marked and holds every user.
      JsonObject stale = new JsonObject().put("stale", true).put("limit", 1000);
      long deadline = System.currentTimeMillis() + 30_000;
      Message<JsonObject> staleBus;
      while (true) {
        staleBus = vertxA.eventBus().<JsonObject>request("kfold.users.query", stale).await(30, TimeUnit.SECONDS);
        if (keys(Envelopes.parse(staleBus.body().toBuffer().getBytes())).equals(everyone)
            && "true".equals(staleBus.headers().get("Kfold-Stale"))) {
          break;
        }
        assertThat(System.currentTimeMillis()).as("the stale answer of node A is marked stale (Kfold-Stale: %s) and"
            + " holds every user within 30 s; last %s", staleBus.headers().get("Kfold-Stale"), staleBus.body())
            .isLessThan(deadline);
        Thread.sleep(100);
      }
      Reply staleHttp = TestNodes.call(client, HttpMethod.GET, a.httpPort(), "/v1/users?stale=true&limit=1000", null,
          Map.of());
      assertThat(staleHttp.status()).as("stale HTTP: %s", staleHttp.body()).isEqualTo(200);
      assertThat(keys(staleHttp.body())).as("stale HTTP answer of node A").containsExactlyElementsOf(everyone);
      assertThat(staleHttp.header("Kfold-Stale")).as("stale HTTP answer of node A, read from its copies")
          .isEqualTo("true");
      // Without stale, the same query asks B and is not marked.
      Reply fresh = TestNodes.call(client, HttpMethod.GET, a.httpPort(), "/v1/users?stale=false&limit=1000", null,
          Map.of());
      assertThat(keys(fresh.body())).as("stale=false answer of node A").containsExactlyElementsOf(everyone);
      assertThat(fresh.header("Kfold-Stale")).as("stale=false answer of node A").isNull();
    } finally {
      client.close();
      for (NodeRuntime node : nodes) {
        node.stop().await(60, TimeUnit.SECONDS);
      }
      vertxA.close().await(30, TimeUnit.SECONDS);
      vertxB.close().await(30, TimeUnit.SECONDS);
    }
  }

  private static List<String> keys(JsonNode page) {
    List<String> keys = new ArrayList<>();
    page.path("items").forEach(item -> keys.add(item.path("key").asText()));
    return keys;
  }

  private static String queryString(JsonObject message) {
    StringBuilder query = new StringBuilder();
    message.forEach(member -> query.append(query.isEmpty() ? "" : "&").append(member.getKey()).append('=')
        .append(URLEncoder.encode(String.valueOf(member.getValue()), StandardCharsets.UTF_8)));
    return query.toString();
  }

  private static void assertFailure(Vertx vertx, String type, JsonObject query, int status, String message) {
    ReplyException failure = awaitFailure(vertx, type, query);
    assertThat(failure.failureCode()).as("failure code of %s: %s", query, failure.getMessage()).isEqualTo(status);
    assertThat(failure.getMessage()).as("failure of %s", query).contains(message);
  }

  private static ReplyException awaitFailure(Vertx vertx, String type, JsonObject query) {
    return awaitFailure(vertx.eventBus().<JsonObject>request("kfold." + type + ".query", query));
  }

  private static ReplyException awaitFailure(io.vertx.core.Future<Message<JsonObject>> request) {
    try {
      Message<JsonObject> reply = request.await(30, TimeUnit.SECONDS);
      throw new AssertionError("expected a failure, got " + reply.body());
    } catch (ReplyException e) {
      return e;
    } catch (Exception e) {
      throw new AssertionError("expected a ReplyException", e);
    }
  }

  /** Waits until each users partition's node has folded every event written to it. */
  private static void awaitFolded(List<NodeRuntime> nodes, NodeConfig config, Map<Integer, Long> ends)
      throws InterruptedException {
    long deadline = System.currentTimeMillis() + 60_000;
    for (Map.Entry<Integer, Long> end : ends.entrySet()) {
      TopicPartition partition = new TopicPartition(config.eventsTopic("users"), end.getKey());
      while (nodes.stream().filter(n -> n.progress().folds(partition))
          .noneMatch(n -> n.store().nextOffset(partition.topic(), partition.partition()).orElse(0) >= end.getValue())) {
        assertThat(System.currentTimeMillis()).as("%s folded to %d", partition, end.getValue()).isLessThan(deadline);
        Thread.sleep(20);
      }
    }
  }
}
