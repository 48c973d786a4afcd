package io.kfold.command;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.kfold.cluster.Ownership;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.json.JsonArray;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.client.WebClient;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.stream.IntStream;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

@ExtendWith(TestBroker.class)
class EventBusApiTest {

  /** A verticle that knows kfold only by its event-bus addresses: it places and pays an order and follows its changes. */
  static final class Shop extends VerticleBase {
    final List<JsonObject> changes = new CopyOnWriteArrayList<>();
    volatile JsonObject paid;
    volatile JsonObject read;
    volatile ReplyException refused;

    @Override
    public Future<?> start() {
      vertx.eventBus().<Buffer>consumer("kfold.orders.changes", message -> {
        JsonObject change = message.body().toJsonObject();
        if (change.getJsonObject("event").getString("key").equals("bus-1")) {
          changes.add(change);
        }
      });
      JsonObject place = new JsonObject().put("key", "bus-1").put("type", "place").put("payload", new JsonObject()
          .put("customerEmail", "bus@example.com")
          .put("items", new JsonArray().add(new JsonObject().put("sku", "mug").put("quantity", 3).put("price", 4.5))));
      return vertx.eventBus().<JsonObject>request("kfold.orders.command", place)
          .compose(placed -> {
            double total = placed.body().getJsonArray("events").getJsonObject(0).getJsonObject("payload").getDouble("total");
            return vertx.eventBus().<JsonObject>request("kfold.orders.command", new JsonObject().put("key", "bus-1")
                .put("type", "pay").put("payload", new JsonObject().put("amount", total))
                .put("expectedVersion", placed.body().getLong("version")));
          })
          .compose(paidReply -> {
            paid = paidReply.body();
            return vertx.eventBus().<JsonObject>request("kfold.orders.get", new JsonObject().put("key", "bus-1")
                .put("minVersion", paid.getLong("version")));
          })
          .compose(getReply -> {
            read = getReply.body();
            return vertx.eventBus().request("kfold.orders.command", new JsonObject().put("key", "bus-1")
                .put("type", "cancel").put("payload", new JsonObject().put("reason", "x")).put("expectedVersion", 1));
          })
          .recover(e -> {
            refused = (ReplyException) e;
            return Future.succeededFuture();
          });
    }
  }

  @Test
  @DisplayName("a verticle places and pays an order, reads it and follows its changes over the event bus alone")
  void eventBusOnly() throws Exception {
    Vertx vertx = Vertx.vertx();
    NodeRuntime node = TestNodes.startCaughtUp(vertx, TestNodes.config(TestNodes.newApp("bus"), TestNodes.tempDir("bus")));
    try {
      Shop shop = new Shop();
      vertx.deployVerticle(shop).await(30, TimeUnit.SECONDS);
      assertThat(shop.paid.getLong("version")).isEqualTo(2L);
      assertThat(shop.read.getJsonObject("state").getString("status")).isEqualTo("paid");
      assertThat(shop.refused.failureCode()).as("a stale expectedVersion fails with the HTTP status").isEqualTo(409);

      long deadline = System.currentTimeMillis() + 10_000;
      while (shop.changes.size() < 2 && System.currentTimeMillis() < deadline) {
        Thread.sleep(20);
      }
      assertThat(shop.changes).extracting(c -> c.getString("id")).containsExactly("bus-1:1", "bus-1:2");
      assertThat(shop.changes.get(1).getJsonObject("state").getString("status")).isEqualTo("paid");

      JsonObject shipped = vertx.eventBus().<JsonObject>request("kfold.orders.command",
          new JsonObject().put("key", "bus-1").put("type", "ship")).await(10, TimeUnit.SECONDS).body();
      assertThat(shipped.getLong("version")).isEqualTo(3L);
      ReplyException missing = (ReplyException) vertx.eventBus().request("kfold.orders.get", new JsonObject().put("key", "nope"))
          .transform(ar -> Future.succeededFuture(ar.cause())).await(10, TimeUnit.SECONDS);
      assertThat(missing.failureCode()).isEqualTo(404);
      ReplyException rejected = (ReplyException) vertx.eventBus().request("kfold.orders.command",
              new JsonObject().put("key", "bus-1").put("type", "pay").put("payload", new JsonObject().put("amount", 1)))
          .transform(ar -> Future.succeededFuture(ar.cause())).await(10, TimeUnit.SECONDS);
      assertThat(rejected.failureCode()).isEqualTo(422);
      assertThat(rejected.getMessage()).contains("already paid");
    } finally {
      node.stop().await(60, TimeUnit.SECONDS);
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  @Test
  @DisplayName("for an order another node folds, a get or a command on one node's event bus is answered by that node: its current state, minVersion waited for there")
  void answeredByTheOwner() throws Exception {
    // A Vert.x instance each: one event bus per node, as two processes would have.
    Vertx vertxA = Vertx.vertx();
    Vertx vertxB = Vertx.vertx();
    String app = TestNodes.newApp("bus-owner");
    NodeConfig configA = TestNodes.quickRebalancesConfig(app, TestNodes.tempDir("bus-owner-a"));
    NodeRuntime a = NodeRuntime.start(vertxA, configA).await(60, TimeUnit.SECONDS);
    NodeRuntime b = NodeRuntime.start(vertxB, TestNodes.quickRebalancesConfig(app, TestNodes.tempDir("bus-owner-b"))).await(60, TimeUnit.SECONDS);
    WebClient client = WebClient.create(vertxB);
    try {
      long deadline = System.currentTimeMillis() + 60_000;
      while (!splitAndKnownBy(client, a, b)) {
        assertThat(System.currentTimeMillis()).as("two nodes share the partitions and node A knows it").isLessThan(deadline);
        Thread.sleep(100);
      }
      Ownership ofB = new Ownership(configA, Map.of("orders", 4), b.progress());
      List<String> foldedByB = IntStream.range(0, 40).mapToObj(i -> "bus-b-" + i).filter(key -> ofB.owns("orders", key))
          .limit(2).toList();
      String order = foldedByB.get(0);
      Reply placed = TestNodes.call(client, HttpMethod.POST, b.httpPort(), "/v1/orders/" + order + "/commands",
          "{\"type\":\"place\",\"payload\":{\"customerEmail\":\"a@b.c\",\"items\":[{\"sku\":\"x\",\"quantity\":1,\"price\":5}]}}",
          Map.of());
      assertThat(placed.status()).isEqualTo(200);

      JsonObject read = get(vertxA, new JsonObject().put("key", order));
      assertThat(read.getString("key")).isEqualTo(order);
      assertThat(read.getLong("version")).isEqualTo(1L);
      assertThat(read.getJsonObject("state").getString("status")).isEqualTo("placed");

      for (int comment = 1; comment <= 5; comment++) {
        Reply written = TestNodes.call(client, HttpMethod.POST, b.httpPort(), "/v1/orders/" + order + "/commands",
            "{\"type\":\"comment\",\"payload\":{\"text\":\"c" + comment + "\"}}", Map.of());
        long version = written.body().path("version").asLong();
        JsonObject now = get(vertxA, new JsonObject().put("key", order));
        assertThat(now.getLong("version")).as("a read after the write answered, without minVersion").isEqualTo(version);
        JsonObject waited = get(vertxA, new JsonObject().put("key", order).put("minVersion", version).put("timeoutMs", 5000));
        assertThat(waited.getLong("version")).isEqualTo(version);
        assertThat(waited.getJsonObject("state").getJsonArray("comments")).hasSize(comment);
      }
      // A command is decided by B as well, as over HTTP, with the same answers.
      JsonObject commanded = vertxA.eventBus().<JsonObject>request("kfold.orders.command", new JsonObject().put("key", order)
          .put("type", "comment").put("payload", new JsonObject().put("text", "over the bus")).put("expectedVersion", 6)
          .put("idempotencyKey", "bus-comment-7")).await(15, TimeUnit.SECONDS).body();
      assertThat(commanded.getLong("version")).isEqualTo(7L);
      assertThat(commanded.getJsonArray("events").getJsonObject(0).getJsonObject("meta").getString("idempotencyKey"))
          .isEqualTo("bus-comment-7");
      assertThat(get(vertxA, new JsonObject().put("key", order)).getJsonObject("state").getJsonArray("comments"))
          .contains("over the bus");
      Throwable stale = vertxA.eventBus().request("kfold.orders.command", new JsonObject().put("key", order)
              .put("type", "comment").put("payload", new JsonObject().put("text", "x")).put("expectedVersion", 6))
          .transform(ar -> Future.succeededFuture(ar.cause())).await(15, TimeUnit.SECONDS);
      assertThat(((ReplyException) stale).failureCode()).isEqualTo(409);

      assertThat(failureCode(vertxA, new JsonObject().put("key", foldedByB.get(1)))).as("an order B does not have").isEqualTo(404);
      assertThat(failureCode(vertxA, new JsonObject().put("key", order).put("minVersion", 99).put("timeoutMs", 200)))
          .as("a version B never reaches").isEqualTo(504);
    } finally {
      client.close();
      a.stop().await(60, TimeUnit.SECONDS);
      b.stop().await(60, TimeUnit.SECONDS);
      vertxA.close().await(30, TimeUnit.SECONDS);
      vertxB.close().await(30, TimeUnit.SECONDS);
    }
  }

  private static JsonObject get(Vertx vertx, JsonObject request) throws Exception {
    return vertx.eventBus().<JsonObject>request("kfold.orders.get", request).await(15, TimeUnit.SECONDS).body();
  }

  private static int failureCode(Vertx vertx, JsonObject request) throws Exception {
    Throwable failure = vertx.eventBus().request("kfold.orders.get", request)
        .transform(ar -> Future.succeededFuture(ar.cause())).await(15, TimeUnit.SECONDS);
    assertThat(failure).isInstanceOf(ReplyException.class);
    return ((ReplyException) failure).failureCode();
  }

  /** Both nodes fold some of the partitions, all together, and A's directory shows B's claim. */
  private static boolean splitAndKnownBy(WebClient client, NodeRuntime a, NodeRuntime b) throws Exception {
    if (!a.progress().caughtUp() || !b.progress().caughtUp() || a.progress().lag().isEmpty() || b.progress().lag().isEmpty()
        || a.progress().lag().size() + b.progress().lag().size() != TestNodes.SHIPPED_PARTITIONS) {
      return false;
    }
    JsonNode nodes = TestNodes.call(client, HttpMethod.GET, a.httpPort(), "/v1/_cluster", null, Map.of()).body().path("nodes");
    int claimed = 0;
    for (JsonNode node : nodes) {
      claimed += node.path("partitions").size();
    }
    return nodes.size() == 2 && claimed == TestNodes.SHIPPED_PARTITIONS;
  }
}
