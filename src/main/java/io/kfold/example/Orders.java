package io.kfold.example;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.entity.Command;
import io.kfold.entity.CommandRejectedException;
import io.kfold.entity.EntityType;
import io.kfold.entity.Envelope;
import io.kfold.entity.KfoldException;
import io.kfold.entity.NewEvent;

import java.math.BigDecimal;
import java.time.DateTimeException;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.List;

/**
 * The example domain: an order is placed, paid (exactly its total), shipped, or cancelled.
 *
 * <p>Rules: an order is placed once; a cancelled or already paid order cannot be paid; an unpaid,
 * cancelled or already shipped order cannot be shipped; a shipped or already cancelled order
 * cannot be cancelled. Comments can be added to any placed order.
 */
public final class Orders implements EntityType {

  private static final JsonNodeFactory JSON = JsonNodeFactory.instance;
  private static final int MAX_ITEMS = 100;

  @Override
  public String name() {
    return "orders";
  }

  @Override
  public JsonNode initialState() {
    return JSON.objectNode().put("status", "new");
  }

  @Override
  public List<NewEvent> decide(JsonNode state, long version, Command command) {
    JsonNode payload = command.payload();
    String status = state.path("status").asText();
    switch (command.type()) {
      case "place" -> {
        if (version > 0) {
          throw new CommandRejectedException("the order is already placed (status " + status + ")");
        }
        return List.of(new NewEvent("OrderPlaced", placed(payload)));
      }
      case "pay" -> {
        requirePlaced(version);
        if (status.equals("cancelled")) {
          throw new CommandRejectedException("a cancelled order cannot be paid");
        }
        if (!status.equals("placed")) {
          throw new CommandRejectedException("the order is already paid (status " + status + ")");
        }
        BigDecimal amount = money(payload, "amount");
        BigDecimal total = state.path("total").decimalValue();
        if (amount.compareTo(total) != 0) {
          throw new CommandRejectedException("the amount " + amount.toPlainString() + " does not equal the order's total "
              + total.toPlainString());
        }
        return List.of(new NewEvent("OrderPaid", JSON.objectNode().put("amount", amount)));
      }
      case "ship" -> {
        requirePlaced(version);
        switch (status) {
          case "cancelled" -> throw new CommandRejectedException("a cancelled order cannot be shipped");
          case "placed" -> throw new CommandRejectedException("an unpaid order cannot be shipped");
          case "shipped" -> throw new CommandRejectedException("the order is already shipped");
          default -> {
            return List.of(new NewEvent("OrderShipped", JSON.objectNode()));
          }
        }
      }
      case "cancel" -> {
        requirePlaced(version);
        if (status.equals("shipped")) {
          throw new CommandRejectedException("a shipped order cannot be cancelled");
        }
        if (status.equals("cancelled")) {
          throw new CommandRejectedException("the order is already cancelled");
        }
        return List.of(new NewEvent("OrderCancelled", JSON.objectNode().put("reason", text(payload, "reason", 500))));
      }
      case "comment" -> {
        requirePlaced(version);
        return List.of(new NewEvent("OrderCommented", JSON.objectNode().put("text", text(payload, "text", 1000))));
      }
      default -> throw KfoldException.badRequest("unknown command '" + command.type()
          + "' for orders; the commands are place, pay, ship, cancel and comment");
    }
  }

  @Override
  public JsonNode apply(JsonNode state, Envelope event) {
    ObjectNode next = ((ObjectNode) state).deepCopy();
    JsonNode payload = event.payload();
    switch (event.type()) {
      case "OrderPlaced" -> next.put("status", "placed")
          .put("customerEmail", payload.path("customerEmail").asText())
          .<ObjectNode>set("items", payload.path("items").deepCopy())
          .put("total", payload.path("total").decimalValue())
          .put("placedAt", placedAt(event.time()));
      case "OrderPaid" -> next.put("status", "paid").put("paidAmount", payload.path("amount").decimalValue());
      case "OrderShipped" -> next.put("status", "shipped");
      case "OrderCancelled" -> next.put("status", "cancelled").put("cancelReason", payload.path("reason").asText());
      case "OrderCommented" -> {
        ArrayNode comments = next.has("comments") ? (ArrayNode) next.get("comments") : next.putArray("comments");
        comments.add(payload.path("text").asText());
      }
      default -> {
        // An event type this version does not know (a newer writer's): the state stays as it is.
      }
    }
    return next;
  }

  /** Nine fraction digits, always: ISO-8601 times of one width sort by time as text (a view's min and max). */
  private static final DateTimeFormatter PLACED_AT =
      DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSSSSSSSS'Z'").withZone(ZoneOffset.UTC);

  /**
   * The order's time: its OrderPlaced event's, never the clock's, so that every node folds the same
   * state. {@code Instant.toString()} drops zero fractions ({@code ...:30Z} sorts after
   * {@code ...:30.5Z}), so the time is written at a fixed width; a time that is not an ISO-8601
   * instant (an outside producer's) is kept as it is.
   */
  static String placedAt(String time) {
    try {
      return PLACED_AT.format(Instant.parse(time));
    } catch (DateTimeException | NullPointerException e) {
      return time;
    }
  }

  private static void requirePlaced(long version) {
    if (version == 0) {
      throw new CommandRejectedException("the order does not exist: place it first");
    }
  }

  /** Validates a place command and computes the order's total from its items. */
  private static ObjectNode placed(JsonNode payload) {
    String email = text(payload, "customerEmail", 254);
    if (!email.matches("[^@\\s]+@[^@\\s]+")) {
      throw KfoldException.badRequest("customerEmail must be an e-mail address, was '" + email + "'");
    }
    JsonNode items = payload.path("items");
    if (!items.isArray() || items.isEmpty() || items.size() > MAX_ITEMS) {
      throw KfoldException.badRequest("items must be an array of 1 to " + MAX_ITEMS + " items");
    }
    ArrayNode checked = JSON.arrayNode();
    BigDecimal total = BigDecimal.ZERO;
    for (int i = 0; i < items.size(); i++) {
      JsonNode item = items.get(i);
      String sku = text(item, "sku", 64);
      JsonNode quantity = item.path("quantity");
      if (!quantity.isIntegralNumber() || quantity.asLong() < 1 || quantity.asLong() > 1_000_000) {
        throw KfoldException.badRequest("items[" + i + "].quantity must be a whole number from 1 to 1000000");
      }
      BigDecimal price = money(item, "price");
      total = total.add(price.multiply(BigDecimal.valueOf(quantity.asLong())));
      checked.addObject().put("sku", sku).put("quantity", quantity.asLong()).put("price", price);
    }
    ObjectNode event = JSON.objectNode().put("customerEmail", email);
    event.set("items", checked);
    event.put("total", total);
    return event;
  }

  private static String text(JsonNode payload, String field, int maxLength) {
    JsonNode value = payload.path(field);
    if (!value.isTextual() || value.asText().isBlank() || value.asText().length() > maxLength) {
      throw KfoldException.badRequest(field + " must be a non-empty string of at most " + maxLength + " characters");
    }
    return value.asText();
  }

  private static BigDecimal money(JsonNode payload, String field) {
    JsonNode value = payload.path(field);
    if (!value.isNumber() || value.decimalValue().signum() < 0) {
      throw KfoldException.badRequest(field + " must be a number of at least 0, was " + value);
    }
    return value.decimalValue().stripTrailingZeros();
  }
}
