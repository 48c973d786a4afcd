package io.kfold.view;

import io.kfold.RunningNode;
import io.kfold.TestBroker;
import io.kfold.TestNodes.Reply;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.time.Duration;
import java.time.Instant;

import static org.assertj.core.api.Assertions.assertThat;

/** The views of the shipped configuration answer after the README's first commands. */
@ExtendWith(TestBroker.class)
class ShippedViewsTest {

  @Test
  @DisplayName("an order placed and paid counts in its customer's row of 'customers' and in the 'paid' row of"
      + " 'order-status'; moving on to shipped moves it to the 'shipped' row, and the 'paid' row disappears")
  void placedAndPaidOrder() throws Exception {
    try (RunningNode node = RunningNode.start("shipped-views")) {
      Reply placed = node.post("/v1/orders/o-1/commands", """
          {"type": "place", "payload": {"customerEmail": "ada@example.com",
           "items": [{"sku": "book", "quantity": 2, "price": 12.5}]}}""");
      assertThat(placed.status()).as("place: %s", placed.body()).isEqualTo(200);
      // Not paid yet: the customers view counts paid and shipped orders only.
      Reply placedRow = awaitRow(node, "/v1/_views/order-status/placed", 1);
      assertThat(placedRow.body().path("row").path("value").decimalValue()).isEqualByComparingTo("25");
      assertThat(node.get("/v1/_views/customers/ada@example.com").status()).isEqualTo(404);

      Reply paid = node.post("/v1/orders/o-1/commands", "{\"type\": \"pay\", \"payload\": {\"amount\": 25}}");
      assertThat(paid.status()).as("pay: %s", paid.body()).isEqualTo(200);
      Reply customer = awaitRow(node, "/v1/_views/customers/ada@example.com", 1);
      assertThat(customer.body().path("row").path("orders").asLong()).isEqualTo(1);
      assertThat(customer.body().path("row").path("spent").decimalValue()).isEqualByComparingTo("25");
      String placedAt = node.get("/v1/orders/o-1").body().path("state").path("placedAt").asText();
      assertThat(customer.body().path("row").path("firstOrder").asText()).isEqualTo(placedAt).isNotEmpty();
      awaitRow(node, "/v1/_views/order-status/paid", 1);
      awaitGone(node, "/v1/_views/order-status/placed");

      assertThat(node.post("/v1/orders/o-1/commands", "{\"type\": \"ship\"}").status()).isEqualTo(200);
      awaitRow(node, "/v1/_views/order-status/shipped", 1);
      awaitGone(node, "/v1/_views/order-status/paid");
      assertThat(awaitRow(node, "/v1/_views/customers/ada@example.com", 1).body().path("row").path("orders").asLong())
          .as("a shipped order still counts for its customer").isEqualTo(1);
    }
  }

  private static Reply awaitRow(RunningNode node, String path, long entities) throws Exception {
    Instant deadline = Instant.now().plus(Duration.ofSeconds(30));
    Reply last;
    do {
      last = node.get(path);
      if (last.status() == 200 && last.body().path("entities").asLong() == entities) {
        return last;
      }
      Thread.sleep(50);
    } while (Instant.now().isBefore(deadline));
    throw new AssertionError(path + " did not answer a row of " + entities + " entities within 30 s; last "
        + last.status() + " " + last.body());
  }

  private static void awaitGone(RunningNode node, String path) throws Exception {
    Instant deadline = Instant.now().plus(Duration.ofSeconds(30));
    Reply last;
    do {
      last = node.get(path);
      if (last.status() == 404) {
        return;
      }
      Thread.sleep(50);
    } while (Instant.now().isBefore(deadline));
    throw new AssertionError(path + " still answered within 30 s: " + last.status() + " " + last.body());
  }
}
