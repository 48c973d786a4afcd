package io.kfold.examples.payments;

import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.math.BigDecimal;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import static org.assertj.core.api.Assertions.assertThat;

/** The application as its main starts it, with a local Kafka broker, driven over the event bus only. */
class PaymentsAppTest {

  @TempDir
  static Path dataDir;

  private static PaymentsApp app;
  /** Every OrderPlaced change published on the event bus, in order, as the verticle receives them. */
  private static final List<Buffer> placedChanges = new CopyOnWriteArrayList<>();

  @BeforeAll
  static void start() {
    app = PaymentsApp.start(Map.of("KFOLD_DATA_DIR", dataDir.toString(), "KFOLD_HTTP_PORT", "0"));
    app.vertx().eventBus().<Buffer>consumer("kfold.orders.changes", message -> {
      if ("OrderPlaced".equals(message.body().toJsonObject().getJsonObject("event").getString("type"))) {
        placedChanges.add(message.body());
      }
    });
  }

  @AfterAll
  static void stop() {
    if (app == null) {
      return;
    }
    String bootstrap = app.kafkaBootstrap();
    app.close();
    assertThat(accepts(bootstrap)).as("the local broker the application started is stopped with it").isFalse();
  }

  @Test
  @DisplayName("a placed order gets its payment requested for its total, and the payment's rules refuse what they must, with their reasons")
  void placedOrderIsPaidByTheRules() {
    request("kfold.orders.command", place("o-1", 3, 4.5));

    JsonObject payment = request("kfold.payments.get", new JsonObject().put("key", "o-1").put("minVersion", 1)
        .put("timeoutMs", 20_000)).getJsonObject("state");
    assertThat(payment.getString("status")).isEqualTo("requested");
    assertThat(payment.getString("orderId")).isEqualTo("o-1");
    assertThat(new BigDecimal(payment.getValue("amount").toString())).isEqualByComparingTo("13.5");

    ReplyException otherAmount = refused("kfold.payments.command", command("o-1", "CapturePayment", 10));
    assertThat(otherAmount.failureCode()).isEqualTo(422);
    assertThat(detail(otherAmount)).isEqualTo("the amount 10 does not match the requested amount 13.5");

    ReplyException notRequested = refused("kfold.payments.command", command("o-unknown", "CapturePayment", 10));
    assertThat(notRequested.failureCode()).isEqualTo(422);
    assertThat(detail(notRequested)).contains("no payment is requested");

    ReplyException notCaptured = refused("kfold.payments.command", command("o-1", "RefundPayment", 5));
    assertThat(detail(notCaptured)).isEqualTo("a payment that is not captured cannot be refunded");

    assertThat(request("kfold.payments.command", command("o-1", "CapturePayment", 13.5)).getLong("version")).isEqualTo(2L);
    ReplyException tooMuch = refused("kfold.payments.command", command("o-1", "RefundPayment", 20));
    assertThat(detail(tooMuch)).isEqualTo("the refund 20 is more than the 13.5 left to refund");
    request("kfold.payments.command", command("o-1", "RefundPayment", 13.5));
    assertThat(request("kfold.payments.get", new JsonObject().put("key", "o-1").put("minVersion", 3))
        .getJsonObject("state").getString("status")).isEqualTo("refunded");
  }

  @Test
  @DisplayName("an OrderPlaced change seen twice requests the payment once, without a refusal")
  void repeatedChangeRequestsOnce() {
    request("kfold.orders.command", place("o-2", 1, 20));
    assertThat(request("kfold.payments.get", new JsonObject().put("key", "o-2").put("minVersion", 1)
        .put("timeoutMs", 20_000)).getLong("version")).isEqualTo(1L);
    PaymentsOnOrders reactions = app.reactions();
    // Each OrderPlaced change gets one request: once they match, the verticle has handled every one.
    await(() -> placedChanges.stream().anyMatch(c -> isPlaced(c, "o-2"))
        && reactions.requested() + reactions.failed() == placedChanges.size(), "the verticle handled every placed order");
    long failedBefore = reactions.failed();
    Buffer again = placedChanges.stream().filter(c -> isPlaced(c, "o-2")).findFirst().orElseThrow();

    app.vertx().eventBus().publish("kfold.orders.changes", again);

    await(() -> reactions.requested() + reactions.failed() == placedChanges.size()
        && placedChanges.stream().filter(c -> isPlaced(c, "o-2")).count() == 2, "the verticle handled the repeated change");
    assertThat(reactions.failed()).as("the repeated request is answered as the first, not refused").isEqualTo(failedBefore);
    assertThat(request("kfold.payments.get", new JsonObject().put("key", "o-2")).getLong("version"))
        .as("no second PaymentRequested").isEqualTo(1L);
  }

  private static JsonObject place(String orderId, int quantity, double price) {
    return new JsonObject().put("key", orderId).put("type", "place").put("payload", new JsonObject()
        .put("customerEmail", "buyer@example.com")
        .put("items", new JsonArray().add(new JsonObject().put("sku", "mug").put("quantity", quantity).put("price", price))));
  }

  private static JsonObject command(String paymentId, String type, Number amount) {
    return new JsonObject().put("key", paymentId).put("type", type).put("payload", new JsonObject().put("amount", amount));
  }

  private static boolean isPlaced(Buffer change, String orderId) {
    return change.toJsonObject().getJsonObject("event").getString("key").equals(orderId);
  }

  private static JsonObject request(String address, JsonObject body) {
    try {
      return app.vertx().eventBus().<JsonObject>request(address, body).await(40, TimeUnit.SECONDS).body();
    } catch (Exception e) {
      throw new AssertionError(address + " " + body + " failed: " + e, e);
    }
  }

  /** A refusal's reason: the failure's message is the problem body kfold's HTTP API answers. */
  private static String detail(ReplyException failure) {
    return new JsonObject(failure.getMessage()).getString("detail");
  }

  private static ReplyException refused(String address, JsonObject body) {
    try {
      Throwable failure = app.vertx().eventBus().request(address, body)
          .transform(ar -> Future.succeededFuture(ar.cause())).await(40, TimeUnit.SECONDS);
      assertThat(failure).as(address + " " + body + " is refused").isInstanceOf(ReplyException.class);
      return (ReplyException) failure;
    } catch (java.util.concurrent.TimeoutException e) {
      throw new AssertionError(address + " " + body + " not answered", e);
    }
  }

  private static void await(BooleanSupplier condition, String what) {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("not within 20 s: " + what);
      }
      try {
        Thread.sleep(20);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new AssertionError("interrupted while waiting until " + what, e);
      }
    }
  }

  private static boolean accepts(String hostPort) {
    String[] parts = hostPort.split(":");
    try (Socket socket = new Socket()) {
      socket.connect(new InetSocketAddress(parts[0], Integer.parseInt(parts[1])), 1000);
      return true;
    } catch (IOException e) {
      return false;
    }
  }
}
