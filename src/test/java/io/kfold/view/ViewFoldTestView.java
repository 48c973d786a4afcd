package io.kfold.view;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.entity.ViewDefinition;

import java.util.List;

/** The test's view: per {@code /group} of a "members" entity, how many there are and the sum of their {@code /n}. */
final class ViewFoldTestView implements ViewDefinition {

  static final String NAME = "totals";
  static final String TYPE = "members";

  /** What each member's n counts for in the sum: 1, or another factor for a changed definition. */
  private final int factor;

  ViewFoldTestView() {
    this(1);
  }

  ViewFoldTestView(int factor) {
    this.factor = factor;
  }

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public List<String> from() {
    return List.of(TYPE);
  }

  @Override
  public String fingerprint() {
    return factor == 1 ? "totals-1" : "totals-x" + factor;
  }

  @Override
  public Share share(String type, JsonNode state) {
    JsonNode group = state.get("group");
    if (group == null || !group.isTextual()) {
      return null;
    }
    JsonNode n = state.get("n");
    return new Share(group.asText(),
        JsonNodeFactory.instance.objectNode().put("n", n == null ? 0 : factor * n.asLong()));
  }

  @Override
  public ObjectNode emptyRow() {
    return JsonNodeFactory.instance.objectNode().put("count", 0).put("sum", 0);
  }

  @Override
  public ObjectNode add(ObjectNode row, JsonNode values) {
    return row.put("count", row.get("count").asLong() + 1).put("sum", row.get("sum").asLong() + values.get("n").asLong());
  }

  @Override
  public ObjectNode subtract(ObjectNode row, JsonNode values) {
    return row.put("count", row.get("count").asLong() - 1).put("sum", row.get("sum").asLong() - values.get("n").asLong());
  }

  @Override
  public JsonNode answer(ObjectNode row) {
    return row;
  }
}
