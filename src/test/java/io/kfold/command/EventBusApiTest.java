package io.kfold.command;

import io.kfold.KfoldNode;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
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
    KfoldNode node = TestNodes.startCaughtUp(vertx, TestNodes.config(TestNodes.newApp("bus"), TestNodes.tempDir("bus")));
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
}
