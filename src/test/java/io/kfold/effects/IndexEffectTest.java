package io.kfold.effects;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.TestBroker;
import io.kfold.TestLog;
import io.kfold.TestNodes;
import io.kfold.types.Envelopes;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.WebClient;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

@ExtendWith({TestBroker.class, TestOpenSearch.class})
class IndexEffectTest {

  private final HttpClient http = HttpClient.newHttpClient();
  private NodeRuntime node;

  @Test
  @DisplayName("a real OpenSearch index holds one document per order with its latest state; neither a late copy of a"
      + " change nor a rewound worker brings back a cancelled order or regresses one, also after OpenSearch has"
      + " forgotten its deletes")
  void ordersIndex() throws Exception {
    Vertx vertx = Vertx.vertx();
    String app = TestNodes.newApp("index");
    String index = app.toLowerCase() + "-orders";
    String worker = "orders-index:\n"
        + "  kind: index\n"
        + "  entities: [orders]\n"
        + "  target: { url: \"" + TestOpenSearch.url() + "\", index: " + index + ", deleteOn: [OrderCancelled] }\n";
    NodeConfig config = NodeConfig.load(TestNodes.envWithEffects(app, TestNodes.tempDir("index"), worker));
    node = TestNodes.startCaughtUp(vertx, config);
    WebClient client = WebClient.create(vertx);
    try {
      for (int i = 0; i < 6; i++) {
        command(client, "x" + i, "{\"type\":\"place\",\"payload\":{\"customerEmail\":\"buyer" + i + "@example.com\","
            + "\"items\":[{\"sku\":\"lamp\",\"quantity\":1,\"price\":30}]}}");
      }
      for (int i = 0; i < 3; i++) {
        command(client, "x" + i, "{\"type\":\"pay\",\"payload\":{\"amount\":30}}");
      }
      command(client, "x0", "{\"type\":\"ship\"}");
      command(client, "x5", "{\"type\":\"cancel\",\"payload\":{\"reason\":\"duplicate\"}}");
      Map<String, Long> versions = Map.of("x0", 3L, "x1", 2L, "x2", 2L, "x3", 1L, "x4", 1L);
      awaitDone(client, config, 11, 11);
      assertIndexed(index, versions);
      assertThat(document(index, "x0").path("_source").path("status").asText()).isEqualTo("shipped");
      assertThat(document(index, "x3").path("_source").path("status").asText()).isEqualTo("placed");
      assertDeleted(index, "x5", 2);

      send("POST", "/" + index + "/_refresh", "");
      JsonNode hits = search(index, "{\"term\":{\"customerEmail.keyword\":\"buyer1@example.com\"}}");
      assertThat(hits.path("total").path("value").asInt()).isEqualTo(1);
      assertThat(hits.path("hits").get(0).path("_id").asText()).isEqualTo("x1");

      // OpenSearch remembers a delete for index.gc_deletes (60 s by default) only; a stale write that
      // comes later finds nothing to conflict with. Shorten the window and wait it out.
      assertThat(send("PUT", "/" + index + "/_settings", "{\"index\":{\"gc_deletes\":\"1s\"}}").statusCode())
          .isEqualTo(200);
      awaitDeletesForgotten(index);

      // A late copy of x5's first change, as from a worker that lost its partition with the change in
      // flight, or from a publisher that published it twice, reaches a worker that has not seen x5 yet.
      node.stop().await(60, TimeUnit.SECONDS);
      ConsumerRecord<byte[], byte[]> placed = null;
      for (ConsumerRecord<byte[], byte[]> record : TestLog.records(config.changesTopic("orders"))) {
        JsonNode event = Envelopes.parse(record.value()).path("event");
        if (event.path("key").asText().equals("x5") && event.path("version").asLong() == 1) {
          placed = record;
        }
      }
      assertThat(placed).as("x5's first change in the changes topic").isNotNull();
      try (KafkaProducer<byte[], byte[]> producer = TestNodes.plainProducer()) {
        producer.send(new ProducerRecord<>(placed.topic(), placed.partition(), placed.key(), placed.value(),
            placed.headers())).get(30, TimeUnit.SECONDS);
      }
      node = TestNodes.startCaughtUp(vertx, config);
      awaitDone(client, config, 11, 1);
      assertDeleted(index, "x5", 2);

      // Deliver every change again, oldest first, as a rewound worker would: nothing goes back in time.
      node.stop().await(60, TimeUnit.SECONDS);
      TestLog.rewind(config.effectGroup("orders-index"));
      node = TestNodes.startCaughtUp(vertx, config);
      // The late copy comes after x5's cancellation: the worker skips it as seen already.
      awaitDone(client, config, 11, 11);
      assertIndexed(index, versions);
      assertThat(document(index, "x0").path("_source").path("status").asText()).isEqualTo("shipped");
      assertDeleted(index, "x5", 2);
    } finally {
      client.close();
      node.stop().await(60, TimeUnit.SECONDS);
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  private void command(WebClient client, String order, String body) throws Exception {
    assertThat(TestNodes.call(client, HttpMethod.POST, node.httpPort(), "/v1/orders/" + order + "/commands", body, Map.of())
        .status()).isEqualTo(200);
  }

  /**
   * Waits until the changes topic holds {@code changes} changes (by id: a copy counts once) and the
   * worker has committed past every record in it, so that each one was delivered or skipped as seen
   * already, then checks how many it delivered since the node started. A write is answered once its
   * event is folded, before its change is published: the last command's change may not be there yet.
   */
  private void awaitDone(WebClient client, NodeConfig config, int changes, int delivered) throws Exception {
    String topic = config.changesTopic("orders");
    long deadline = System.currentTimeMillis() + 60_000;
    Map<TopicPartition, Long> ends = new HashMap<>();
    Set<String> ids = new HashSet<>();
    while (ids.size() < changes) {
      assertThat(System.currentTimeMillis()).as("%d changes in %s; it has %s", changes, topic, ids).isLessThan(deadline);
      ends.clear();
      ids.clear();
      for (ConsumerRecord<byte[], byte[]> record : TestLog.records(topic)) {
        ends.merge(new TopicPartition(topic, record.partition()), record.offset() + 1, Math::max);
        ids.add(Envelopes.parse(record.value()).path("id").asText());
      }
      if (ids.size() < changes) {
        Thread.sleep(100);
      }
    }
    try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, TestBroker.bootstrap()))) {
      while (true) {
        Map<TopicPartition, OffsetAndMetadata> committed = admin.listConsumerGroupOffsets(config.effectGroup("orders-index"))
            .partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
        if (ends.entrySet().stream().allMatch(end -> committed.get(end.getKey()) != null
            && committed.get(end.getKey()).offset() >= end.getValue())) {
          break;
        }
        assertThat(System.currentTimeMillis()).as("worker committed up to %s; it has %s", ends, committed)
            .isLessThan(deadline);
        Thread.sleep(100);
      }
    }
    JsonNode stats = TestNodes.call(client, HttpMethod.GET, node.httpPort(), "/v1/_effects", null, Map.of()).body()
        .path("workers").path("orders-index");
    assertThat(stats.path("delivered").asInt()).as("delivered; worker: %s", stats).isEqualTo(delivered);
    assertThat(stats.path("deadLettered").asInt()).as("dead-lettered; worker: %s", stats).isZero();
  }

  private void assertIndexed(String index, Map<String, Long> versions) throws Exception {
    for (Map.Entry<String, Long> expected : versions.entrySet()) {
      JsonNode document = document(index, expected.getKey());
      assertThat(document.path("found").asBoolean()).as("%s indexed", expected.getKey()).isTrue();
      assertThat(document.path("_version").asLong()).as(expected.getKey()).isEqualTo(expected.getValue());
    }
  }

  /**
   * The entity's state is gone from the index: by id there is no document or only a tombstone of the
   * version that deleted it, and a search of live documents does not find it.
   */
  private void assertDeleted(String index, String id, long version) throws Exception {
    JsonNode document = document(index, id);
    if (document.path("found").asBoolean()) {
      assertThat(document.path("_source")).as("%s was deleted; the index holds %s", id, document)
          .isEqualTo(Envelopes.parse("{\"_deleted\":true}".getBytes(StandardCharsets.UTF_8)));
      assertThat(document.path("_version").asLong()).as("%s's tombstone", id).isEqualTo(version);
    }
    send("POST", "/" + index + "/_refresh", "");
    assertThat(search(index, "{\"ids\":{\"values\":[\"" + id + "\"]}}").path("hits")).as("live documents %s", id)
        .isEmpty();
  }

  /** Hits of a query among live documents, that is without tombstones, as the README says to search. */
  private JsonNode search(String index, String query) throws Exception {
    String live = "{\"query\":{\"bool\":{\"must\":" + query + ",\"must_not\":{\"term\":{\"_deleted\":true}}}}}";
    HttpResponse<String> response = send("POST", "/" + index + "/_search", live);
    assertThat(response.statusCode()).as("search %s: %s", live, response.body()).isEqualTo(200);
    return Envelopes.parse(response.body().getBytes(StandardCharsets.UTF_8)).path("hits");
  }

  /**
   * Waits until OpenSearch has forgotten the deletes made in the index so far: a probe document
   * deleted at version 2 takes a write at version 1 only once its delete is forgotten, and the window
   * is counted on the node's one clock, so every earlier delete is forgotten too. The probe is
   * deleted again afterwards.
   */
  private void awaitDeletesForgotten(String index) throws Exception {
    String probe = "/" + index + "/_doc/gc-probe?version_type=external&version=";
    assertThat(send("PUT", probe + 1, "{}").statusCode()).isEqualTo(201);
    assertThat(send("DELETE", probe + 2, null).statusCode()).isEqualTo(200);
    long deadline = System.currentTimeMillis() + 30_000;
    int status;
    while ((status = send("PUT", probe + 1, "{}").statusCode()) == 409) {
      assertThat(System.currentTimeMillis()).as("OpenSearch forgets a delete").isLessThan(deadline);
      Thread.sleep(100);
    }
    assertThat(status).as("a stale write after the delete was forgotten").isEqualTo(201);
    assertThat(send("DELETE", "/" + index + "/_doc/gc-probe", null).statusCode()).isEqualTo(200);
  }

  private JsonNode document(String index, String id) throws Exception {
    return Envelopes.parse(get(index + "/_doc/" + id).body().getBytes());
  }

  private HttpResponse<String> get(String path) throws Exception {
    return send("GET", "/" + path, null);
  }

  private HttpResponse<String> send(String method, String path, String json) throws Exception {
    HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(TestOpenSearch.url() + path)).timeout(Duration.ofSeconds(30))
        .header("Content-Type", "application/json");
    request.method(method, json == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(json));
    return http.send(request.build(), HttpResponse.BodyHandlers.ofString());
  }
}
