package io.kfold.view;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.entity.Envelope;
import io.kfold.types.Envelopes;
import io.kfold.entity.ViewDefinition;
import io.kfold.view.ConfiguredView.Aggregate;
import io.kfold.view.ConfiguredView.Field;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.math.BigDecimal;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The fold applies a row's contributions in place ({@link ViewType#applyInPlace}) instead of
 * copying the row's state for each: it must change the row as {@link ViewType#apply} does, and a
 * contribution the view refuses (dead-lettered by the fold) must leave the row as it was.
 */
class ViewTypeTest {

  private static final JsonNodeFactory JSON = JsonNodeFactory.instance;
  private static final ConfiguredView CUSTOMERS = new ConfiguredView("customers", List.of("orders"), "/customerEmail",
      Map.of(), List.of(new Field("orders", Aggregate.COUNT, null), new Field("spent", Aggregate.SUM, "/total"),
          new Field("firstOrder", Aggregate.MIN, "/placedAt")));

  @Test
  @DisplayName("in place, contributions change the row as apply does, and apply leaves the state it gets alone")
  void inPlaceAsApply() throws IOException {
    ViewType view = answering(CUSTOMERS);
    List<Envelope> contributions = List.of(
        added(view, "o1", order("1.10", "2026-01-02T00:00:00Z"), 5),
        added(view, "o2", order("2.20", "2026-01-01T00:00:00Z"), 6),
        subtracted(view, "o1", order("1.10", "2026-01-02T00:00:00Z"), 7));
    JsonNode copied = view.initialState();
    JsonNode inPlace = view.initialState();
    for (Envelope contribution : contributions) {
      JsonNode given = copied;
      JsonNode asGiven = given.deepCopy();
      copied = view.apply(given, contribution);
      assertThat(given).as("apply's input after it").isEqualTo(asGiven).isNotEqualTo(copied);
      JsonNode returned = view.applyInPlace(inPlace, contribution);
      assertThat(returned).as("applyInPlace returns the state it changed").isSameAs(inPlace);
      assertThat(inPlace).isEqualTo(copied);
    }
    assertThat(view.answer("ada@example.com", inPlace).toString()).isEqualTo("{\"key\":\"ada@example.com\","
        + "\"row\":{\"orders\":1,\"spent\":2.2,\"firstOrder\":\"2026-01-01T00:00:00Z\"},\"entities\":1,\"version\":\""
        + view.target() + "\"}");
  }

  @Test
  @DisplayName("a contribution a configured view cannot read (a value that is not JSON text, after fields it could)"
      + " leaves the row as it was")
  void configuredViewRefusesWhole() throws IOException {
    ViewType view = answering(CUSTOMERS);
    JsonNode state = view.applyInPlace(view.initialState(), added(view, "o1", order("1.10", "2026-01-02T00:00:00Z"), 5));
    JsonNode before = state.deepCopy();
    Envelope bad = added(view, "o2", order("2.20", "2026-01-01T00:00:00Z"), 6);
    ((ObjectNode) bad.payload().get("values")).put("/placedAt", "{not JSON");
    assertThatThrownBy(() -> view.applyInPlace(state, bad)).isInstanceOf(IllegalArgumentException.class);
    assertThat(state).as("the row after a refused contribution").isEqualTo(before);
  }

  @Test
  @DisplayName("a contribution a view in Java refuses after it changed the row leaves the row as it was")
  void javaViewRefusesWhole() {
    ViewFoldTestView totals = new ViewFoldTestView();
    ViewType view = answering(totals);
    JsonNode state = view.applyInPlace(view.initialState(),
        contribution(view, "add", JSON.objectNode().put("n", 3), 5));
    JsonNode before = state.deepCopy();
    // Its add counts the member, then reads n: without n it throws with the count already changed.
    assertThatThrownBy(() -> view.applyInPlace(state, contribution(view, "add", JSON.objectNode(), 6)))
        .isInstanceOf(NullPointerException.class);
    assertThat(state).as("the row after a refused contribution").isEqualTo(before);
  }

  private static ViewType answering(ViewDefinition definition) {
    ViewType view = new ViewType(definition, 4);
    view.completeEverywhere(view.target());
    return view;
  }

  private static ObjectNode order(String total, String placedAt) {
    return JSON.objectNode().put("customerEmail", "ada@example.com").put("total", new BigDecimal(total))
        .put("placedAt", placedAt);
  }

  /** The fold's contribution of an order that enters the view at {@code offset}. */
  private static Envelope added(ViewType view, String order, ObjectNode state, long offset) throws IOException {
    return envelope(view, Contributions.of(view.definition(), view.target(), "orders", order, null, state, 0, offset));
  }

  /** The fold's contribution of an order that leaves the view at {@code offset}. */
  private static Envelope subtracted(ViewType view, String order, ObjectNode state, long offset) throws IOException {
    return envelope(view, Contributions.of(view.definition(), view.target(), "orders", order, state,
        JSON.objectNode(), 0, offset));
  }

  private static Envelope envelope(ViewType view, List<Contributions.Contribution> contributions) throws IOException {
    assertThat(contributions).hasSize(1);
    return event(view, Envelopes.parse(contributions.get(0).value()));
  }

  private static Envelope contribution(ViewType view, String op, JsonNode values, long offset) {
    ObjectNode payload = JSON.objectNode().put("op", op).put("version", view.target().toString());
    payload.set("values", values);
    payload.putObject("source").put("type", ViewFoldTestView.TYPE).put("key", "m1").put("partition", 0)
        .put("offset", offset).put("seq", 1);
    return event(view, payload);
  }

  private static Envelope event(ViewType view, JsonNode payload) {
    return new Envelope("c-" + payload.path("source").path("offset"), "contribution", view.name(), "row",
        Envelope.NO_VERSION, null, payload, null);
  }
}
