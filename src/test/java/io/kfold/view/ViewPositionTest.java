package io.kfold.view;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.OpenApiContract;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.kfold.cluster.Forwarder;
import io.kfold.types.Envelopes;
import io.kfold.query.Position;
import io.vertx.core.Vertx;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.client.WebClient;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.utils.Utils;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Read your writes for views ({@code ?minPosition=}), with a real broker and three nodes of the
 * shipped configuration (orders, views {@code customers} and {@code order-status}): each round
 * places and pays an order through a node that folds neither the order nor the customer's row, and
 * reads, through that node, with each write's position: the row of {@code order-status} the order
 * joined, the customer's row over HTTP and over the event bus, and the list of
 * {@code order-status}; each holds the write. A position the fold does not reach answers 504; a
 * malformed one, or one of a type the view is not from, 400.
 */
@ExtendWith(TestBroker.class)
class ViewPositionTest {

  private static final int NODES = 3;
  private static final int ROUNDS = 24;
  private static final int CUSTOMERS = 5;

  @Test
  @DisplayName("three nodes: place and pay 24 orders through a node that folds neither the order nor the customer's"
      + " row; the row, the bus get and the list read with each write's position hold it; 504 past the log's end,"
      + " 400 for a bad position")
  void readYourWritesThroughAThirdNode() throws Exception {
    String app = TestNodes.newApp("vpos");
    List<Vertx> vertxes = new ArrayList<>();
    List<NodeRuntime> nodes = new ArrayList<>();
    for (int i = 0; i < NODES; i++) {
      vertxes.add(Vertx.vertx());
    }
    WebClient client = WebClient.create(vertxes.get(0));
    try {
      NodeConfig config = null;
      List<io.vertx.core.Future<NodeRuntime>> starting = new ArrayList<>();
      for (int i = 0; i < NODES; i++) {
        var dir = TestNodes.tempDir("vpos-" + i);
        // No side effects: the test reads views only, and a reaction's writes would only add load.
        config = NodeConfig.load(TestNodes.withEffects(TestNodes.env(app, dir), dir, "{}"));
        starting.add(NodeRuntime.start(vertxes.get(i), config, NodeRuntime.Options.DEFAULTS));
      }
      for (var node : starting) {
        nodes.add(node.await(60, TimeUnit.SECONDS));
      }
      awaitSplitAndKnown(client, nodes, config);
      List<String> names = new ArrayList<>();
      for (NodeRuntime node : nodes) {
        names.add(TestNodes.call(client, HttpMethod.GET, node.httpPort(), "/v1/_cluster", null, Map.of()).body()
            .path("node").asText());
      }
      OpenApiContract api = OpenApiContract.parse(client.get(nodes.get(0).httpPort(), "127.0.0.1", "/openapi.yaml")
          .send().await(10, TimeUnit.SECONDS).bodyAsString());

      String orders = config.eventsTopic("orders");
      Map<String, Integer> paidByCustomer = new TreeMap<>();
      int paid = 0;
      String last = null;
      for (int i = 0; i < ROUNDS; i++) {
        String order = "v" + i;
        String email = "c" + (i % CUSTOMERS) + "@v.example";
        TopicPartition orderPartition = new TopicPartition(orders, partitionOf(order, config.kafka().partitions()));
        int rowOwner = answeredBy(client, nodes, names, "/v1/_views/customers/" + email);
        int through = neither(nodes, orderPartition, rowOwner);
        NodeRuntime node = nodes.get(through);
        String as = "round " + i + ", " + order + " of " + email + " through node " + through;

        String placedAt = write(client, node, api, order, "{\"type\": \"place\", \"payload\": {\"customerEmail\": \""
            + email + "\", \"items\": [{\"sku\": \"s\", \"quantity\": 1, \"price\": 5}]}}");
        // The order paid in the round before left this row: only the place brings it back.
        Reply placedRow = row(client, node, "order-status", "placed", placedAt, api);
        assertThat(placedRow.status()).as("%s: the placed row at the place's position: %s", as, placedRow.body())
            .isEqualTo(200);
        assertThat(placedRow.body().path("entities").asLong()).as("%s: orders placed and not paid", as).isEqualTo(1);

        String paidAt = write(client, node, api, order, "{\"type\": \"pay\", \"payload\": {\"amount\": 5}}");
        last = paidAt;
        paid++;
        int customerOrders = paidByCustomer.merge(email, 1, Integer::sum);
        // Each way of reading comes right after a write in some rounds, so that each must wait itself.
        if (i % 3 == 0) {
          Reply customer = row(client, node, "customers", email, paidAt, api);
          assertThat(customer.status()).as("%s: the customer's row at the pay's position: %s", as, customer.body())
              .isEqualTo(200);
          assertThat(customer.body().path("row").path("orders").asLong()).as("%s: the customer's paid orders", as)
              .isEqualTo(customerOrders);
          assertThat(customer.header(Forwarder.ANSWERED_BY)).as("%s: answered by the row's node", as)
              .isEqualTo(names.get(rowOwner));
        } else if (i % 3 == 1) {
          JsonNode bus = busRow(vertxes.get(through), "customers", email, paidAt);
          assertThat(bus.path("row").path("orders").asLong()).as("%s: the bus get of the customer's row", as)
              .isEqualTo(customerOrders);
        } else {
          assertThat(statusList(client, node, paidAt, api)).as("%s: the order-status list at the pay's position", as)
              .isEqualTo(Map.of("paid", (long) paid));
        }
      }

      // The wait the views' reads begin with, asked of every node: the last write is published.
      for (NodeRuntime node : nodes) {
        Reply published = TestNodes.call(client, HttpMethod.GET, node.httpPort(), "/v1/_positions/" + last
            + "?timeoutMs=10000", null, Map.of());
        assertThat(published.status()).as("the last position through %d: %s", node.httpPort(), published.body())
            .isEqualTo(200);
        api.assertAnswer("GET", "/v1/_positions/{position}", published);
      }

      // A position the log has not reached: 504 after timeoutMs, saying what was not reached.
      String far = new Position(orders, 0, 1_000_000_000L).token();
      for (NodeRuntime node : nodes) {
        Reply late = TestNodes.call(client, HttpMethod.GET, node.httpPort(),
            "/v1/_views/customers/c0@v.example?minPosition=" + far + "&timeoutMs=200", null, Map.of());
        assertThat(late.status()).as("far position, row through %d: %s", node.httpPort(), late.body()).isEqualTo(504);
        assertThat(late.body().path("detail").asText()).contains("did not publish");
        api.assertAnswer("GET", "/v1/_views/{view}/{key}", late);
        Reply lateList = TestNodes.call(client, HttpMethod.GET, node.httpPort(),
            "/v1/_views/order-status?minPosition=" + far + "&timeoutMs=200", null, Map.of());
        assertThat(lateList.status()).as("far position, list through %d: %s", node.httpPort(), lateList.body())
            .isEqualTo(504);
        api.assertAnswer("GET", "/v1/_views/{view}", lateList);
        Reply latePosition = TestNodes.call(client, HttpMethod.GET, node.httpPort(), "/v1/_positions/" + far
            + "?timeoutMs=200", null, Map.of());
        assertThat(latePosition.status()).as("far position through %d: %s", node.httpPort(), latePosition.body())
            .isEqualTo(504);
        api.assertAnswer("GET", "/v1/_positions/{position}", latePosition);
      }
      String ofUsers = new Position(config.eventsTopic("users"), 0, 0).token();
      for (String bad : List.of("not-a-position", ofUsers, new Position(orders, config.kafka().partitions(), 0).token())) {
        String token = URLEncoder.encode(bad, StandardCharsets.UTF_8);
        for (String path : List.of("/v1/_views/customers/c0@v.example", "/v1/_views/customers")) {
          Reply reply = TestNodes.call(client, HttpMethod.GET, nodes.get(0).httpPort(), path + "?minPosition=" + token,
              null, Map.of());
          assertThat(reply.status()).as("%s?minPosition=%s: %s", path, bad, reply.body()).isEqualTo(400);
          assertThat(reply.body().path("detail").asText()).as(bad).containsAnyOf("malformed position",
              "is not a position of the events of [orders]");
          api.assertAnswer("GET", path.endsWith("customers") ? "/v1/_views/{view}" : "/v1/_views/{view}/{key}", reply);
        }
      }
    } finally {
      client.close();
      for (NodeRuntime node : nodes) {
        node.stop().await(60, TimeUnit.SECONDS);
      }
      for (Vertx vertx : vertxes) {
        vertx.close().await(30, TimeUnit.SECONDS);
      }
    }
  }

  /** A command of the order through {@code node}; its answer's position, once checked against the contract. */
  private static String write(WebClient client, NodeRuntime node, OpenApiContract api, String order, String command)
      throws Exception {
    Reply written = TestNodes.call(client, HttpMethod.POST, node.httpPort(), "/v1/orders/" + order + "/commands",
        command, Map.of());
    assertThat(written.status()).as("%s on %s: %s", command, order, written.body()).isEqualTo(200);
    api.assertAnswer("POST", "/v1/{type}/{id}/commands", written);
    return written.body().path("position").asText();
  }

  private static Reply row(WebClient client, NodeRuntime node, String view, String key, String position,
                           OpenApiContract api) throws Exception {
    Reply reply = TestNodes.call(client, HttpMethod.GET, node.httpPort(), "/v1/_views/" + view + "/" + key
        + "?minPosition=" + position + "&timeoutMs=10000", null, Map.of());
    api.assertAnswer("GET", "/v1/_views/{view}/{key}", reply);
    return reply;
  }

  private static JsonNode busRow(Vertx vertx, String view, String key, String position) throws Exception {
    try {
      return Envelopes.parse(vertx.eventBus().<JsonObject>request("kfold.view." + view + ".get",
              new JsonObject().put("key", key).put("minPosition", position).put("timeoutMs", 10_000))
          .await(30, TimeUnit.SECONDS).body().toBuffer().getBytes());
    } catch (ReplyException e) {
      throw new AssertionError("the bus get of " + view + " row " + key + " failed with " + e.failureCode() + ": "
          + e.getMessage(), e);
    }
  }

  /** The rows of order-status, status → entities, as the list read with the position answers them. */
  private static Map<String, Long> statusList(WebClient client, NodeRuntime node, String position, OpenApiContract api)
      throws Exception {
    Reply page = TestNodes.call(client, HttpMethod.GET, node.httpPort(), "/v1/_views/order-status?minPosition="
        + position + "&timeoutMs=10000", null, Map.of());
    assertThat(page.status()).as("the order-status list: %s", page.body()).isEqualTo(200);
    api.assertAnswer("GET", "/v1/_views/{view}", page);
    assertThat(page.body().path("next").isNull()).as("one page holds every status").isTrue();
    Map<String, Long> rows = new HashMap<>();
    page.body().path("items").forEach(item -> rows.put(item.path("key").asText(), item.path("entities").asLong()));
    return rows;
  }

  /** The index of the node that answers {@code path} (a read forwarded to the node that folds it). */
  private static int answeredBy(WebClient client, List<NodeRuntime> nodes, List<String> names, String path)
      throws Exception {
    Reply reply = TestNodes.call(client, HttpMethod.GET, nodes.get(0).httpPort(), path, null, Map.of());
    String name = reply.header(Forwarder.ANSWERED_BY);
    assertThat(names).as("the node that answered %s (%d %s)", path, reply.status(), reply.body()).contains(name);
    return names.indexOf(name);
  }

  /** A node that folds neither the order's partition nor the row: with three nodes there is one. */
  private static int neither(List<NodeRuntime> nodes, TopicPartition orderPartition, int rowOwner) {
    for (int i = 0; i < nodes.size(); i++) {
      if (i != rowOwner && !nodes.get(i).progress().folds(orderPartition)) {
        return i;
      }
    }
    throw new AssertionError("every node folds " + orderPartition + " or the row");
  }

  private static int partitionOf(String key, int partitions) {
    return Utils.toPositive(Utils.murmur2(key.getBytes(StandardCharsets.UTF_8))) % partitions;
  }

  /**
   * Until every node folds some orders partitions, all caught up, and each node's directory shows
   * every node's claims covering the partitions they fold: then each read through one node can be
   * forwarded to the others.
   */
  private static void awaitSplitAndKnown(WebClient client, List<NodeRuntime> nodes, NodeConfig config) throws Exception {
    long deadline = System.currentTimeMillis() + 60_000;
    while (!splitAndKnown(client, nodes, config)) {
      assertThat(System.currentTimeMillis()).as("the partitions split over the nodes, known by each").isLessThan(deadline);
      Thread.sleep(100);
    }
  }

  private static boolean splitAndKnown(WebClient client, List<NodeRuntime> nodes, NodeConfig config) throws Exception {
    Set<String> folded = new HashSet<>();
    for (NodeRuntime node : nodes) {
      var partitions = node.progress().lag().keySet();
      if (!node.progress().caughtUp() || partitions.stream().noneMatch(p -> p.topic().equals(config.eventsTopic("orders")))) {
        return false;
      }
      partitions.forEach(p -> folded.add(p.toString()));
    }
    for (NodeRuntime node : nodes) {
      JsonNode claims = TestNodes.call(client, HttpMethod.GET, node.httpPort(), "/v1/_cluster", null, Map.of()).body()
          .path("nodes");
      Set<String> claimed = new HashSet<>();
      claims.forEach(claim -> claim.path("partitions").forEach(p -> claimed.add(p.asText())));
      if (claims.size() != nodes.size() || !claimed.equals(folded)) {
        return false;
      }
    }
    return true;
  }
}
