package io.kfold.http;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.Await;
import io.kfold.OpenApiContract;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.WebClient;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code GET /v1/_types} on two nodes: each partition counted once, on the node that folds it,
 * though each node's store also holds a standby copy of the other's partitions.
 */
@ExtendWith(TestBroker.class)
class EntityCountsTest {

  private static final int USERS = 30;
  private static final int ORDERS = 7;

  @Test
  @DisplayName("two nodes, each keeping a copy of the other's partitions: both count every users and orders entity"
      + " once, with the types' indexes and views, as the OpenAPI description says")
  void countsOverTheNodesThatFold() throws Exception {
    String app = TestNodes.newApp("counts");
    Vertx vertxA = Vertx.vertx();
    Vertx vertxB = Vertx.vertx();
    WebClient client = WebClient.create(vertxA);
    List<NodeRuntime> nodes = new ArrayList<>();
    try {
      NodeConfig config = TestNodes.quickRebalancesConfig(app, TestNodes.tempDir("counts-a"));
      nodes.add(TestNodes.startCaughtUp(vertxA, config));
      nodes.add(TestNodes.startCaughtUp(vertxB, TestNodes.quickRebalancesConfig(app, TestNodes.tempDir("counts-b"))));
      Await.until("both nodes fold partitions and know each other's claims", () -> TestNodes.splitAndKnown(nodes.get(0),
          nodes.get(1), node -> TestNodes.call(client, HttpMethod.GET, node.httpPort(), "/v1/_cluster", null, Map.of()).body()));
      NodeRuntime a = nodes.get(0);
      for (int i = 0; i < USERS; i++) {
        Reply written = TestNodes.call(client, HttpMethod.POST, a.httpPort(), "/v1/users/u" + i + "/events",
            "{\"events\":[{\"type\":\"Registered\",\"payload\":{\"email\":\"u" + i + "@x\"}}]}", Map.of());
        assertThat(written.status()).as("user %d: %s", i, written.body()).isEqualTo(200);
      }
      for (int i = 0; i < ORDERS; i++) {
        Reply placed = TestNodes.call(client, HttpMethod.POST, a.httpPort(), "/v1/orders/o" + i + "/commands",
            "{\"type\":\"place\",\"payload\":{\"customerEmail\":\"c@x\",\"items\":[{\"sku\":\"s\",\"quantity\":1,"
                + "\"price\":5}]}}", Map.of());
        assertThat(placed.status()).as("order %d: %s", i, placed.body()).isEqualTo(200);
      }
      // Each store holds every entity once the standby copies have caught up: a count of a store's
      // keys would then find them all on each node, and a sum over both nodes twice.
      Await.until("each node's store holds every user and order", () -> nodes.stream().allMatch(node ->
          node.store().countStates("users") == USERS && node.store().countStates("orders") == ORDERS));

      OpenApiContract api = OpenApiContract.parse(client.get(a.httpPort(), "127.0.0.1", "/openapi.yaml")
          .send().await(10, TimeUnit.SECONDS).bodyAsString());
      for (NodeRuntime node : nodes) {
        Reply types = TestNodes.call(client, HttpMethod.GET, node.httpPort(), "/v1/_types", null, Map.of());
        assertThat(types.status()).as("node on %d: %s", node.httpPort(), types.body()).isEqualTo(200);
        api.assertAnswer("GET", "/v1/_types", types);
        JsonNode users = type(types.body(), "users");
        JsonNode orders = type(types.body(), "orders");
        assertThat(users.path("entities").asLong()).as("users counted through the node on %d", node.httpPort())
            .isEqualTo(USERS);
        assertThat(orders.path("entities").asLong()).as("orders counted through the node on %d", node.httpPort())
            .isEqualTo(ORDERS);
        assertThat(type(types.body(), "shipments").path("entities").asLong()).isZero();
        assertThat(users.path("indexes").get(0).path("name").asText()).isEqualTo("email");
        assertThat(orders.path("views").toString()).contains("customers", "order-status");
        assertThat(users.path("partitions").asInt()).isEqualTo(config.kafka().partitions());
      }
    } finally {
      for (NodeRuntime node : nodes) {
        node.stop().await(60, TimeUnit.SECONDS);
      }
      vertxA.close().await(30, TimeUnit.SECONDS);
      vertxB.close().await(30, TimeUnit.SECONDS);
    }
  }

  private static JsonNode type(JsonNode body, String name) {
    for (JsonNode type : body.path("types")) {
      if (type.path("name").asText().equals(name)) {
        return type;
      }
    }
    throw new AssertionError("no type " + name + " in " + body);
  }
}
