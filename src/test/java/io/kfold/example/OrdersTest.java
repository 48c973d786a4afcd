package io.kfold.example;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.entity.Command;
import io.kfold.entity.CommandRejectedException;
import io.kfold.entity.Envelope;
import io.kfold.types.Envelopes;
import io.kfold.entity.KfoldException;
import io.kfold.entity.NewEvent;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The orders rules, one test each: decide against a state built by folding the decided events. */
class OrdersTest {

  private static final String PLACE = "{\"customerEmail\":\"ada@example.com\",\"items\":["
      + "{\"sku\":\"book\",\"quantity\":2,\"price\":12.50},{\"sku\":\"pen\",\"quantity\":1,\"price\":0.99}]}";

  private final Orders orders = new Orders();
  private JsonNode state = orders.initialState();
  private long version;

  private static JsonNode json(String text) {
    try {
      return Envelopes.parse(text.getBytes(StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new IllegalArgumentException(e);
    }
  }

  /** Decides the command and folds its events, as kfold would. */
  private List<NewEvent> run(String type, String payload) {
    List<NewEvent> events = orders.decide(state, version, new Command(type, json(payload)));
    for (NewEvent event : events) {
      version++;
      state = orders.apply(state, new Envelope("e" + version, event.type(), "orders", "o1", version, "t", event.payload(), null));
    }
    return events;
  }

  private void rejected(String type, String payload, String reason) {
    assertThatThrownBy(() -> run(type, payload)).isInstanceOf(CommandRejectedException.class)
        .hasMessageContaining(reason)
        .satisfies(e -> assertThat(((KfoldException) e).status()).isEqualTo(422));
  }

  private void invalid(String type, String payload, String detail) {
    assertThatThrownBy(() -> run(type, payload)).isInstanceOf(KfoldException.class).hasMessageContaining(detail)
        .satisfies(e -> assertThat(((KfoldException) e).status()).isEqualTo(400));
  }

  @Test
  @DisplayName("placing computes the total from the items")
  void placeComputesTotal() {
    assertThat(run("place", PLACE)).extracting(NewEvent::type).containsExactly("OrderPlaced");
    assertThat(state.path("status").asText()).isEqualTo("placed");
    assertThat(state.path("total").decimalValue()).isEqualByComparingTo("25.99");
    assertThat(state.path("customerEmail").asText()).isEqualTo("ada@example.com");
  }

  @Test
  @DisplayName("an order is placed once")
  void placeOnce() {
    run("place", PLACE);
    rejected("place", PLACE, "already placed");
  }

  @Test
  @DisplayName("a place command without a valid e-mail, items, quantity or price is malformed (400)")
  void placeValidation() {
    invalid("place", "{\"items\":[{\"sku\":\"a\",\"quantity\":1,\"price\":1}]}", "customerEmail");
    invalid("place", "{\"customerEmail\":\"not-an-address\",\"items\":[{\"sku\":\"a\",\"quantity\":1,\"price\":1}]}", "e-mail address");
    invalid("place", "{\"customerEmail\":\"a@b.c\",\"items\":[]}", "items");
    invalid("place", "{\"customerEmail\":\"a@b.c\",\"items\":[{\"sku\":\"a\",\"quantity\":0,\"price\":1}]}", "items[0].quantity");
    invalid("place", "{\"customerEmail\":\"a@b.c\",\"items\":[{\"sku\":\"a\",\"quantity\":1,\"price\":\"free\"}]}", "price");
    invalid("place", "{\"customerEmail\":\"a@b.c\",\"items\":[{\"quantity\":1,\"price\":1}]}", "sku");
  }

  @Test
  @DisplayName("paying needs exactly the order's total")
  void payExactTotal() {
    run("place", PLACE);
    rejected("pay", "{\"amount\":25}", "does not equal the order's total 25.99");
    run("pay", "{\"amount\":25.990}");
    assertThat(state.path("status").asText()).isEqualTo("paid");
  }

  @Test
  @DisplayName("an order cannot be paid twice")
  void payOnce() {
    run("place", PLACE);
    run("pay", "{\"amount\":25.99}");
    rejected("pay", "{\"amount\":25.99}", "already paid");
  }

  @Test
  @DisplayName("a cancelled order cannot be paid")
  void noPayingCancelled() {
    run("place", PLACE);
    run("cancel", "{\"reason\":\"changed my mind\"}");
    rejected("pay", "{\"amount\":25.99}", "cancelled order cannot be paid");
  }

  @Test
  @DisplayName("an unpaid order cannot be shipped")
  void noShippingUnpaid() {
    run("place", PLACE);
    rejected("ship", "{}", "unpaid order cannot be shipped");
  }

  @Test
  @DisplayName("a cancelled order cannot be shipped")
  void noShippingCancelled() {
    run("place", PLACE);
    run("cancel", "{\"reason\":\"out of stock\"}");
    rejected("ship", "{}", "cancelled order cannot be shipped");
  }

  @Test
  @DisplayName("a paid order ships once")
  void shipOnce() {
    run("place", PLACE);
    run("pay", "{\"amount\":25.99}");
    run("ship", "{}");
    assertThat(state.path("status").asText()).isEqualTo("shipped");
    rejected("ship", "{}", "already shipped");
  }

  @Test
  @DisplayName("a shipped order cannot be cancelled")
  void noCancellingShipped() {
    run("place", PLACE);
    run("pay", "{\"amount\":25.99}");
    run("ship", "{}");
    rejected("cancel", "{\"reason\":\"too late\"}", "shipped order cannot be cancelled");
  }

  @Test
  @DisplayName("cancelling needs a reason and happens once")
  void cancel() {
    run("place", PLACE);
    invalid("cancel", "{}", "reason");
    run("cancel", "{\"reason\":\"duplicate order\"}");
    assertThat(state.path("cancelReason").asText()).isEqualTo("duplicate order");
    rejected("cancel", "{\"reason\":\"again\"}", "already cancelled");
  }

  @Test
  @DisplayName("commands on an order never placed are rejected")
  void commandsNeedAPlacedOrder() {
    rejected("pay", "{\"amount\":1}", "place it first");
    rejected("ship", "{}", "place it first");
    rejected("cancel", "{\"reason\":\"x\"}", "place it first");
  }

  @Test
  @DisplayName("an unknown command is malformed, and names the known ones")
  void unknownCommand() {
    invalid("refund", "{}", "place, pay, ship, cancel and comment");
  }

  @Test
  @DisplayName("apply does not modify the state it is given")
  void applyIsPure() {
    run("place", PLACE);
    JsonNode before = state.deepCopy();
    orders.apply(state, new Envelope("x", "OrderPaid", "orders", "o1", 2, "t", json("{\"amount\":25.99}"), null));
    assertThat(state).isEqualTo(before);
  }

  @Test
  @DisplayName("placedAt is the OrderPlaced event's time, at a fixed width so that text order is time order")
  void placedAtIsTheEventTime() {
    JsonNode placed = json("{\"customerEmail\":\"ada@example.com\",\"items\":[],\"total\":1}");
    for (String time : List.of("2026-11-28T10:15:30Z", "2026-11-28T10:15:30.5Z", "2026-11-28T10:15:30.123456Z",
        "2026-11-28T10:15:30.123456789Z")) {
      JsonNode state = orders.apply(orders.initialState(),
          new Envelope("e1", "OrderPlaced", "orders", "o1", 1, time, placed, null));
      assertThat(java.time.Instant.parse(state.path("placedAt").asText())).isEqualTo(java.time.Instant.parse(time));
      assertThat(state.path("placedAt").asText()).hasSize("2026-11-28T10:15:30.000000000Z".length());
      // Later events keep it.
      state = orders.apply(state, new Envelope("e2", "OrderCommented", "orders", "o1", 2, "2027-01-01T00:00:00Z",
          json("{\"text\":\"hi\"}"), null));
      assertThat(java.time.Instant.parse(state.path("placedAt").asText())).isEqualTo(java.time.Instant.parse(time));
    }
    assertThat(orders.apply(orders.initialState(), new Envelope("e1", "OrderPlaced", "orders", "o1", 1, "yesterday",
        placed, null)).path("placedAt").asText()).isEqualTo("yesterday");
  }
}
