package io.kfold.examples.payments;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.entity.Command;
import io.kfold.entity.CommandRejectedException;
import io.kfold.entity.EntityType;
import io.kfold.entity.Envelope;
import io.kfold.entity.IndexDefinition;
import io.kfold.entity.KfoldException;
import io.kfold.entity.NewEvent;

import java.math.BigDecimal;
import java.util.List;

/**
 * The payment of an order, keyed by the order's id: requested for the order's total, captured for
 * exactly that amount, then refunded, in one or several parts, up to what was captured.
 *
 * <p>Rules: a payment is requested once; nothing is captured before it is requested, nor twice, nor
 * for another amount than requested; nothing is refunded before it is captured, nor more than is
 * left of the captured amount.
 *
 * <p>Commands: {@code RequestPayment {orderId, amount}}, {@code CapturePayment {amount}},
 * {@code RefundPayment {amount}}. Events: {@code PaymentRequested}, {@code PaymentCaptured},
 * {@code PaymentRefunded}. State: {@code {status, orderId, amount, refunded}}, status
 * {@code none | requested | captured | refunded} (refunded once the whole amount is).
 */
public final class Payments implements EntityType {

  private static final JsonNodeFactory JSON = JsonNodeFactory.instance;

  @Override
  public String name() {
    return "payments";
  }

  /** Payments by status ({@code GET /v1/payments?status=requested}), kept by the fold with each state. */
  @Override
  public List<IndexDefinition> indexes() {
    return List.of(new IndexDefinition("status", "/status", IndexDefinition.Kind.STRING));
  }

  @Override
  public JsonNode initialState() {
    return JSON.objectNode().put("status", "none");
  }

  @Override
  public List<NewEvent> decide(JsonNode state, long version, Command command) {
    JsonNode payload = command.payload();
    String status = state.path("status").asText();
    switch (command.type()) {
      case "RequestPayment" -> {
        if (version > 0) {
          throw new CommandRejectedException("a payment is already requested for order " + state.path("orderId").asText()
              + " (status " + status + ")");
        }
        JsonNode orderId = payload.path("orderId");
        if (!orderId.isTextual() || orderId.asText().isBlank()) {
          throw KfoldException.badRequest("orderId must be a non-empty string");
        }
        BigDecimal amount = amount(payload);
        return List.of(new NewEvent("PaymentRequested", JSON.objectNode().put("orderId", orderId.asText())
            .put("amount", amount)));
      }
      case "CapturePayment" -> {
        requireRequested(version);
        if (!status.equals("requested")) {
          throw new CommandRejectedException("the payment is already captured (status " + status + ")");
        }
        BigDecimal amount = amount(payload);
        BigDecimal requested = state.path("amount").decimalValue();
        if (amount.compareTo(requested) != 0) {
          throw new CommandRejectedException("the amount " + amount.toPlainString() + " does not match the requested amount "
              + requested.toPlainString());
        }
        return List.of(new NewEvent("PaymentCaptured", JSON.objectNode().put("amount", amount)));
      }
      case "RefundPayment" -> {
        requireRequested(version);
        if (status.equals("requested")) {
          throw new CommandRejectedException("a payment that is not captured cannot be refunded");
        }
        BigDecimal amount = amount(payload);
        BigDecimal refundable = state.path("amount").decimalValue().subtract(state.path("refunded").decimalValue());
        if (amount.compareTo(refundable) > 0) {
          throw new CommandRejectedException("the refund " + amount.toPlainString() + " is more than the "
              + refundable.toPlainString() + " left to refund");
        }
        return List.of(new NewEvent("PaymentRefunded", JSON.objectNode().put("amount", amount)));
      }
      default -> throw KfoldException.badRequest("unknown command '" + command.type()
          + "' for payments; the commands are RequestPayment, CapturePayment and RefundPayment");
    }
  }

  @Override
  public JsonNode apply(JsonNode state, Envelope event) {
    ObjectNode next = ((ObjectNode) state).deepCopy();
    JsonNode payload = event.payload();
    switch (event.type()) {
      case "PaymentRequested" -> next.put("status", "requested")
          .put("orderId", payload.path("orderId").asText())
          .put("amount", payload.path("amount").decimalValue())
          .put("refunded", BigDecimal.ZERO);
      case "PaymentCaptured" -> next.put("status", "captured");
      case "PaymentRefunded" -> {
        BigDecimal refunded = next.path("refunded").decimalValue().add(payload.path("amount").decimalValue());
        next.put("refunded", refunded);
        if (refunded.compareTo(next.path("amount").decimalValue()) >= 0) {
          next.put("status", "refunded");
        }
      }
      default -> {
        // An event type this version does not know (a newer writer's): the state stays as it is.
      }
    }
    return next;
  }

  private static void requireRequested(long version) {
    if (version == 0) {
      throw new CommandRejectedException("no payment is requested for this order: request it first");
    }
  }

  /** An amount of money: a JSON number above 0, compared by value (1.50 is 1.5). */
  private static BigDecimal amount(JsonNode payload) {
    JsonNode value = payload.path("amount");
    if (!value.isNumber() || value.decimalValue().signum() <= 0) {
      throw KfoldException.badRequest("amount must be a number above 0, was " + value);
    }
    return value.decimalValue().stripTrailingZeros();
  }
}
