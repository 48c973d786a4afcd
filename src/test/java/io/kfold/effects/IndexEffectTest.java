package io.kfold.effects;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.KfoldConfig;
import io.kfold.KfoldNode;
import io.kfold.TestBroker;
import io.kfold.TestLog;
import io.kfold.TestNodes;
import io.kfold.entity.Envelopes;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.WebClient;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

@ExtendWith({TestBroker.class, TestOpenSearch.class})
class IndexEffectTest {

  private final HttpClient http = HttpClient.newHttpClient();
  private KfoldNode node;

  @Test
  @DisplayName("a real OpenSearch index holds one document per order with its latest state; re-delivery never regresses it")
  void ordersIndex() throws Exception {
    Vertx vertx = Vertx.vertx();
    String app = TestNodes.newApp("index");
    String index = app.toLowerCase() + "-orders";
    String worker = "orders-index:\n"
        + "  kind: index\n"
        + "  entities: [orders]\n"
        + "  target: { url: \"" + TestOpenSearch.url() + "\", index: " + index + ", deleteOn: [OrderCancelled] }\n";
    KfoldConfig config = KfoldConfig.load(TestNodes.envWithEffects(app, TestNodes.tempDir("index"), worker));
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
      awaitIndexed(index, versions);
      assertThat(document(index, "x0").path("_source").path("status").asText()).isEqualTo("shipped");
      assertThat(document(index, "x3").path("_source").path("status").asText()).isEqualTo("placed");
      assertThat(get(index + "/_doc/x5").statusCode()).as("a cancelled order leaves the index").isEqualTo(404);

      send("POST", "/" + index + "/_refresh", "");
      JsonNode hits = Envelopes.parse(send("POST", "/" + index + "/_search",
          "{\"query\":{\"term\":{\"customerEmail.keyword\":\"buyer1@example.com\"}}}").body().getBytes()).path("hits");
      assertThat(hits.path("total").path("value").asInt()).isEqualTo(1);
      assertThat(hits.path("hits").get(0).path("_id").asText()).isEqualTo("x1");

      // Deliver every change again, oldest first, as a rewound worker would: nothing goes back in time.
      node.stop().await(60, TimeUnit.SECONDS);
      TestLog.rewind(config.effectGroup("orders-index"));
      node = TestNodes.startCaughtUp(vertx, config);
      long deadline = System.currentTimeMillis() + 60_000;
      while (TestNodes.call(client, HttpMethod.GET, node.httpPort(), "/v1/_effects", null, Map.of()).body()
          .path("workers").path("orders-index").path("delivered").asInt() < 11) {
        assertThat(System.currentTimeMillis()).as("all 11 changes delivered again").isLessThan(deadline);
        Thread.sleep(100);
      }
      for (Map.Entry<String, Long> expected : versions.entrySet()) {
        assertThat(document(index, expected.getKey()).path("_version").asLong()).as(expected.getKey())
            .isEqualTo(expected.getValue());
      }
      assertThat(document(index, "x0").path("_source").path("status").asText()).isEqualTo("shipped");
      assertThat(get(index + "/_doc/x5").statusCode()).isEqualTo(404);
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

  private void awaitIndexed(String index, Map<String, Long> versions) throws Exception {
    long deadline = System.currentTimeMillis() + 60_000;
    for (Map.Entry<String, Long> expected : versions.entrySet()) {
      while (get(index + "/_doc/" + expected.getKey()).statusCode() != 200
          || document(index, expected.getKey()).path("_version").asLong() != expected.getValue()) {
        assertThat(System.currentTimeMillis()).as("%s indexed at version %d", expected.getKey(), expected.getValue())
            .isLessThan(deadline);
        Thread.sleep(100);
      }
    }
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
