package io.kfold.effects;

import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.TestBroker;
import io.kfold.TestLog;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.WebClient;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

@ExtendWith(TestBroker.class)
class ReactionTest {

  private NodeRuntime node;

  @Test
  @DisplayName("a paid order leads to exactly one ShipmentRequested, also when the paid change is delivered twice")
  void paidOrderRequestsOneShipment() throws Exception {
    Vertx vertx = Vertx.vertx();
    NodeConfig config = TestNodes.config(TestNodes.newApp("reaction"), TestNodes.tempDir("reaction"));
    node = TestNodes.startCaughtUp(vertx, config);
    WebClient client = WebClient.create(vertx);
    try {
      String place = "{\"type\":\"place\",\"payload\":{\"customerEmail\":\"ada@example.com\","
          + "\"items\":[{\"sku\":\"book\",\"quantity\":1,\"price\":10}]}}";
      assertThat(call(client, node, HttpMethod.POST, "/v1/orders/r1/commands", place).status()).isEqualTo(200);
      assertThat(call(client, node, HttpMethod.POST, "/v1/orders/r1/commands",
          "{\"type\":\"pay\",\"payload\":{\"amount\":10}}").status()).isEqualTo(200);

      Reply shipment = call(client, node, HttpMethod.GET, "/v1/shipments/r1?minVersion=1&timeoutMs=20000", null);
      assertThat(shipment.status()).isEqualTo(200);
      assertThat(shipment.body().path("state").path("order").asText()).isEqualTo("r1");
      assertThat(shipment.body().path("state").path("customerEmail").asText()).isEqualTo("ada@example.com");
      assertThat(shipment.body().path("state").path("items").get(0).path("sku").asText()).isEqualTo("book");

      // Deliver the paid change again, as a crash before the worker's commit would: rewind the
      // worker's offsets and start a new node, whose worker remembers nothing.
      node.stop().await(60, TimeUnit.SECONDS);
      TestLog.rewind(config.effectGroup("shipment-request"));
      node = TestNodes.startCaughtUp(vertx, config);
      long deadline = System.currentTimeMillis() + 60_000;
      while (call(client, node, HttpMethod.GET, "/v1/_effects", null).body()
          .path("workers").path("shipment-request").path("delivered").asInt() < 1) {
        assertThat(System.currentTimeMillis()).as("the paid change is delivered again").isLessThan(deadline);
        Thread.sleep(50);
      }
      assertThat(call(client, node, HttpMethod.GET, "/v1/shipments/r1", null).body().path("version").asLong()).isEqualTo(1);
      assertThat(TestLog.events(config.eventsTopic("shipments"), "r1")).hasSize(1)
          .allMatch(e -> e.path("type").asText().equals("ShipmentRequested"));
    } finally {
      client.close();
      node.stop().await(60, TimeUnit.SECONDS);
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  private static Reply call(WebClient client, NodeRuntime node, HttpMethod method, String path, String body) throws Exception {
    return TestNodes.call(client, method, node.httpPort(), path, body, Map.of());
  }
}
