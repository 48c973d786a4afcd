package io.kfold.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.KfoldConfig;
import io.kfold.KfoldNode;
import io.kfold.TestBroker;
import io.kfold.TestLog;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.WebClient;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/** Two nodes share the partitions; a caller never needs to know which one folds an entity. */
@ExtendWith(TestBroker.class)
class OwnershipTest {

  @Test
  @DisplayName("with two nodes, either node answers any entity's commands, reads and change stream, decided by the node that folds it")
  void anyNodeAnswers() throws Exception {
    Vertx vertx = Vertx.vertx();
    String app = TestNodes.newApp("owners");
    KfoldConfig first = TestNodes.config(app, TestNodes.tempDir("owner-a"));
    KfoldConfig second = TestNodes.config(app, TestNodes.tempDir("owner-b"));
    KfoldNode a = KfoldNode.start(vertx, first).await(60, TimeUnit.SECONDS);
    KfoldNode b = KfoldNode.start(vertx, second).await(60, TimeUnit.SECONDS);
    WebClient client = WebClient.create(vertx);
    try {
      long deadline = System.currentTimeMillis() + 60_000;
      while (!splitAndKnown(client, a, b)) {
        assertThat(System.currentTimeMillis()).as("two nodes share the 12 partitions and know it").isLessThan(deadline);
        Thread.sleep(100);
      }
      List<KfoldNode> nodes = List.of(a, b);
      for (int i = 0; i < 10; i++) {
        String order = "o" + i;
        Reply placed = TestNodes.call(client, HttpMethod.POST, nodes.get(i % 2).httpPort(), "/v1/orders/" + order + "/commands",
            "{\"type\":\"place\",\"payload\":{\"customerEmail\":\"a@b.c\",\"items\":[{\"sku\":\"x\",\"quantity\":1,\"price\":5}]}}",
            Map.of());
        assertThat(placed.status()).as("place %s", order).isEqualTo(200);
        Reply paid = TestNodes.call(client, HttpMethod.POST, nodes.get((i + 1) % 2).httpPort(),
            "/v1/orders/" + order + "/commands", "{\"type\":\"pay\",\"payload\":{\"amount\":5}}", Map.of("If-Match", "\"1\""));
        assertThat(paid.status()).as("pay %s on the other node", order).isEqualTo(200);
        assertThat(paid.etag()).isEqualTo("\"2\"");
        Reply stale = TestNodes.call(client, HttpMethod.POST, nodes.get(i % 2).httpPort(), "/v1/orders/" + order + "/commands",
            "{\"type\":\"comment\",\"payload\":{\"text\":\"x\"}}", Map.of("If-Match", "\"1\""));
        assertThat(stale.status()).isEqualTo(409);
        for (KfoldNode node : nodes) {
          Reply read = TestNodes.call(client, HttpMethod.GET, node.httpPort(), "/v1/orders/" + order, null, Map.of());
          assertThat(read.status()).isEqualTo(200);
          assertThat(read.body().path("version").asLong()).isEqualTo(2);
          assertThat(read.body().path("state").path("status").asText()).isEqualTo("paid");
        }
        assertThat(TestLog.events(first.eventsTopic("orders"), order)).hasSize(2);
      }
      // The change stream of an order the other node folds is relayed from it.
      Ownership ofB = new Ownership(first, Map.of("orders", 4), b.progress());
      String order = java.util.stream.IntStream.range(0, 10).mapToObj(i -> "o" + i).filter(o -> ofB.owns("orders", o))
          .findFirst().orElseThrow();
      List<String> frames = new java.util.concurrent.CopyOnWriteArrayList<>();
      HttpClient http = vertx.createHttpClient();
      HttpClientResponse stream = http.request(HttpMethod.GET, a.httpPort(), "127.0.0.1", "/v1/orders/" + order + "/changes")
          .compose(request -> request.send())
          .map(sse -> sse.handler(chunk -> frames.addAll(List.of(chunk.toString().split("\n\n")))))
          .await(10, TimeUnit.SECONDS);
      assertThat(stream.statusCode()).isEqualTo(200);
      assertThat(stream.getHeader("content-type")).isEqualTo("text/event-stream");
      deadline = System.currentTimeMillis() + 10_000;
      while (frames.isEmpty() && System.currentTimeMillis() < deadline) {
        Thread.sleep(20);
      }
      assertThat(TestNodes.call(client, HttpMethod.POST, a.httpPort(), "/v1/orders/" + order + "/commands",
          "{\"type\":\"comment\",\"payload\":{\"text\":\"relayed\"}}", Map.of()).status()).isEqualTo(200);
      while (frames.stream().noneMatch(f -> f.startsWith("event: change\nid: 3")) && System.currentTimeMillis() < deadline) {
        Thread.sleep(20);
      }
      assertThat(frames.get(0)).startsWith("event: state\nid: 2");
      assertThat(frames).anyMatch(f -> f.startsWith("event: change\nid: 3") && f.contains("relayed"));
      // A client reconnecting through the relay resumes after its Last-Event-ID.
      List<String> resumed = new java.util.concurrent.CopyOnWriteArrayList<>();
      http.request(new io.vertx.core.http.RequestOptions().setMethod(HttpMethod.GET).setPort(a.httpPort())
              .setHost("127.0.0.1").setURI("/v1/orders/" + order + "/changes").putHeader("Last-Event-ID", "2"))
          .compose(request -> request.send())
          .map(sse -> sse.handler(chunk -> List.of(chunk.toString().split("\n\n")).stream()
              .filter(f -> !f.startsWith(":")).forEach(resumed::add)))
          .await(10, TimeUnit.SECONDS);
      deadline = System.currentTimeMillis() + 10_000;
      while (resumed.isEmpty() && System.currentTimeMillis() < deadline) {
        Thread.sleep(20);
      }
      http.close();
      assertThat(resumed).isNotEmpty();
      assertThat(resumed.get(0)).startsWith("event: change\nid: 3").contains("relayed");
    } finally {
      client.close();
      a.stop().await(60, TimeUnit.SECONDS);
      b.stop().await(60, TimeUnit.SECONDS);
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  /** Both nodes fold some partitions, all 12 together, and each node's directory shows both claims. */
  private static boolean splitAndKnown(WebClient client, KfoldNode a, KfoldNode b) throws Exception {
    if (!a.progress().caughtUp() || !b.progress().caughtUp() || a.progress().lag().isEmpty() || b.progress().lag().isEmpty()
        || a.progress().lag().size() + b.progress().lag().size() != 12) {
      return false;
    }
    for (KfoldNode node : List.of(a, b)) {
      JsonNode cluster = TestNodes.call(client, HttpMethod.GET, node.httpPort(), "/v1/_cluster", null, Map.of()).body();
      Set<String> claimed = new HashSet<>();
      cluster.path("nodes").forEach(n -> n.path("partitions").forEach(p -> claimed.add(p.asText())));
      if (cluster.path("nodes").size() != 2 || claimed.size() != 12) {
        return false;
      }
    }
    return true;
  }
}
