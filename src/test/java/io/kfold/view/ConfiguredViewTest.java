package io.kfold.view;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.DecimalNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.entity.ViewDefinition;
import io.kfold.view.ConfiguredView.Aggregate;
import io.kfold.view.ConfiguredView.Field;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.math.BigDecimal;
import java.math.MathContext;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A configured view's rows, kept as the fold will keep them (the old share subtracted from its row,
 * the new one added to its row), against rows computed again from the final states by code of the
 * test's own.
 */
class ConfiguredViewTest {

  private static final JsonNodeFactory JSON = JsonNodeFactory.instance;
  /** Reads decimals as doubles: rows and shares must stay exact through such a reader too. */
  private static final ObjectMapper DOUBLES = new ObjectMapper();

  private static final ConfiguredView VIEW = new ConfiguredView("customers", List.of("orders"), "/customer",
      Map.of("/status", List.of(JSON.textNode("paid"), JSON.textNode("shipped"))),
      List.of(new Field("orders", Aggregate.COUNT, null), new Field("spent", Aggregate.SUM, "/total"),
          new Field("average", Aggregate.AVG, "/total"), new Field("firstOrder", Aggregate.MIN, "/placedAt"),
          new Field("lastOrder", Aggregate.MAX, "/placedAt"), new Field("smallest", Aggregate.MIN, "/total"),
          new Field("largest", Aggregate.MAX, "/total"), new Field("tags", Aggregate.DISTINCT_COUNT, "/tag")));

  // Random states.

  private static JsonNode pick(Random random, JsonNode... choices) {
    return choices[random.nextInt(choices.length)];
  }

  private static JsonNode decimal(String text) {
    return DecimalNode.valueOf(new BigDecimal(text));
  }

  /** A state that may move the entity to another row, out of {@code where}, or give it odd values. */
  private static ObjectNode randomState(Random random) {
    ObjectNode state = JSON.objectNode();
    putUnlessMissing(state, "customer", pick(random, JSON.textNode("a@x"), JSON.textNode("b@x"), JSON.textNode("c@x"),
        JSON.textNode("d@x"), JSON.numberNode(10), decimal("10.0"), JSON.booleanNode(true), JSON.textNode(""),
        JSON.nullNode(), JSON.objectNode().put("o", 1), null));
    putUnlessMissing(state, "status", pick(random, JSON.textNode("paid"), JSON.textNode("paid"), JSON.textNode("shipped"),
        JSON.textNode("placed"), JSON.textNode("cancelled"), JSON.numberNode(1), null));
    putUnlessMissing(state, "total", pick(random, decimal("0.1"), decimal("0.2"), decimal("0.7"), decimal("1.10"),
        JSON.numberNode(3), decimal("12.50"), decimal("-4.25"), decimal("1E+2"), decimal("0.30"),
        JSON.textNode("lots"), JSON.booleanNode(false), JSON.arrayNode().add(1), JSON.nullNode(), null));
    putUnlessMissing(state, "placedAt", pick(random, JSON.textNode("2026-01-01T10:00:00.000000000Z"),
        JSON.textNode("2026-01-02T10:00:00.000000000Z"), JSON.textNode("2026-01-03T09:30:00.000000000Z"),
        JSON.textNode("2026-02-01T00:00:00.000000000Z"), JSON.textNode("\uD83D\uDE00"), JSON.textNode("\uFB01"),
        JSON.numberNode(5), JSON.booleanNode(true), JSON.objectNode(), JSON.nullNode(), null));
    putUnlessMissing(state, "tag", pick(random, JSON.textNode("x"), JSON.textNode("1"), JSON.numberNode(1),
        decimal("1.0"), JSON.booleanNode(false), JSON.arrayNode(), JSON.nullNode(), null));
    return state;
  }

  private static void putUnlessMissing(ObjectNode state, String field, JsonNode value) {
    if (value != null) {
      state.set(field, value);
    }
  }

  // The test's own computation of the answers, from the states.

  private static String keyOf(JsonNode state) {
    JsonNode key = state.get("customer");
    if (key == null || key.isNull() || key.isContainerNode() || key.asText().isEmpty()) {
      return null;
    }
    return key.isNumber() ? key.decimalValue().stripTrailingZeros().toPlainString() : key.asText();
  }

  private static boolean matches(JsonNode state) {
    JsonNode status = state.path("status");
    return status.isTextual() && (status.asText().equals("paid") || status.asText().equals("shipped"));
  }

  /** Numbers by value before strings by code point; others left out. */
  private static int order(JsonNode a, JsonNode b) {
    if (a.isNumber() && b.isNumber()) {
      return a.decimalValue().compareTo(b.decimalValue());
    }
    if (a.isNumber() != b.isNumber()) {
      return a.isNumber() ? -1 : 1;
    }
    int[] x = a.asText().codePoints().toArray();
    int[] y = b.asText().codePoints().toArray();
    return java.util.Arrays.compare(x, y);
  }

  private static boolean present(JsonNode value) {
    return value != null && !value.isNull();
  }

  /** What the row of these entities must answer. */
  private static ObjectNode expected(List<JsonNode> members) {
    ObjectNode answer = JSON.objectNode();
    ObjectNode skipped = JSON.objectNode();
    answer.put("orders", members.size());
    BigDecimal sum = BigDecimal.ZERO;
    long numbers = 0;
    long notNumbers = 0;
    for (JsonNode state : members) {
      JsonNode total = state.get("total");
      if (present(total) && total.isNumber()) {
        sum = sum.add(total.decimalValue());
        numbers++;
      } else if (present(total)) {
        notNumbers++;
      }
    }
    answer.put("spent", sum);
    answer.set("average", numbers == 0 ? JSON.nullNode() : JSON.numberNode(sum.divide(BigDecimal.valueOf(numbers),
        MathContext.DECIMAL128)));
    if (notNumbers > 0) {
      skipped.put("spent", notNumbers);
      skipped.put("average", notNumbers);
    }
    extremes(members, "placedAt", "firstOrder", "lastOrder", answer, skipped);
    extremes(members, "total", "smallest", "largest", answer, skipped);
    Set<String> tags = new HashSet<>();
    long tagSkips = 0;
    for (JsonNode state : members) {
      JsonNode tag = state.get("tag");
      if (present(tag) && tag.isNumber()) {
        tags.add("number " + tag.decimalValue().stripTrailingZeros().toPlainString());
      } else if (present(tag) && (tag.isTextual() || tag.isBoolean())) {
        tags.add(tag.getNodeType() + " " + tag.asText());
      } else if (present(tag)) {
        tagSkips++;
      }
    }
    answer.put("tags", tags.size());
    if (tagSkips > 0) {
      skipped.put("tags", tagSkips);
    }
    if (!skipped.isEmpty()) {
      answer.set("_skipped", skipped);
    }
    return answer;
  }

  private static void extremes(List<JsonNode> members, String member, String min, String max, ObjectNode answer,
                               ObjectNode skipped) {
    List<JsonNode> values = new ArrayList<>();
    long skips = 0;
    for (JsonNode state : members) {
      JsonNode value = state.get(member);
      if (present(value) && (value.isNumber() || value.isTextual())) {
        values.add(value);
      } else if (present(value)) {
        skips++;
      }
    }
    values.sort(ConfiguredViewTest::order);
    answer.set(min, values.isEmpty() ? JSON.nullNode() : values.get(0));
    answer.set(max, values.isEmpty() ? JSON.nullNode() : values.get(values.size() - 1));
    if (skips > 0) {
      skipped.put(min, skips);
      skipped.put(max, skips);
    }
  }

  /** Equal JSON, numbers by value: {@code 0.3} and {@code 0.30} are the same answer. */
  private static void assertSameAnswer(String row, JsonNode actual, JsonNode expected) {
    assertThat(sameJson(actual, expected)).as("row %s: answered %s, expected %s", row, actual, expected).isTrue();
  }

  private static boolean sameJson(JsonNode a, JsonNode b) {
    if (a.isNumber() && b.isNumber()) {
      return a.decimalValue().compareTo(b.decimalValue()) == 0;
    }
    if (a.isObject() && b.isObject()) {
      if (a.size() != b.size()) {
        return false;
      }
      for (Iterator<Map.Entry<String, JsonNode>> it = a.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> field = it.next();
        if (!b.has(field.getKey()) || !sameJson(field.getValue(), b.get(field.getKey()))) {
          return false;
        }
      }
      return true;
    }
    return a.equals(b);
  }

  // The pipeline, as the fold will run it.

  /** The view's rows with the fold's own entity count; a row whose count comes back to 0 is dropped. */
  private static final class Rows {
    final Map<String, ObjectNode> rows = new TreeMap<>();
    final Map<String, Long> entities = new HashMap<>();

    void change(JsonNode before, JsonNode after) throws JsonProcessingException {
      ViewDefinition.Share old = before == null ? null : VIEW.share("orders", before);
      ViewDefinition.Share now = VIEW.share("orders", after);
      if (old != null) {
        apply(old.rowKey(), travel(old.values()), -1);
      }
      if (now != null) {
        apply(now.rowKey(), travel(now.values()), 1);
      }
    }

    private void apply(String key, JsonNode values, int sign) throws JsonProcessingException {
      ObjectNode row = rows.containsKey(key) ? rows.get(key) : VIEW.emptyRow();
      row = sign > 0 ? VIEW.add(row, values) : VIEW.subtract(row, values);
      long count = entities.getOrDefault(key, 0L) + sign;
      if (count == 0) {
        // How the fold tells an empty row: its own entity count is 0; the row is then emptyRow() again
        // (as JSON text: a reader may give a 0 as an int where emptyRow() has a long).
        assertThat(DOUBLES.writeValueAsString(row)).as("row %s with no entity left", key)
            .isEqualTo(DOUBLES.writeValueAsString(VIEW.emptyRow()));
        rows.remove(key);
        entities.remove(key);
      } else {
        // Stored and read back, as the row is between two contributions.
        rows.put(key, (ObjectNode) travel(row));
        entities.put(key, count);
      }
    }

    /** Through JSON text and a reader that turns decimals into doubles. */
    private static JsonNode travel(JsonNode node) throws JsonProcessingException {
      return DOUBLES.readTree(DOUBLES.writeValueAsString(node));
    }
  }

  @Test
  @DisplayName("rows kept by retraction and addition over random state changes equal rows computed from the final states")
  void rowsEqualARecomputationFromTheFinalStates() throws JsonProcessingException {
    for (long seed = 1; seed <= 4; seed++) {
      Random random = new Random(seed);
      Map<Integer, JsonNode> states = new HashMap<>();
      Rows rows = new Rows();
      for (int step = 0; step < 10_000; step++) {
        int entity = random.nextInt(40);
        JsonNode next = randomState(random);
        rows.change(states.get(entity), next);
        states.put(entity, next);
      }
      Map<String, List<JsonNode>> byRow = new TreeMap<>();
      states.values().stream().filter(ConfiguredViewTest::matches).filter(s -> keyOf(s) != null)
          .forEach(s -> byRow.computeIfAbsent(keyOf(s), k -> new ArrayList<>()).add(s));
      assertThat(rows.rows.keySet()).as("seed %d: the rows", seed).isEqualTo(byRow.keySet());
      for (Map.Entry<String, List<JsonNode>> row : byRow.entrySet()) {
        assertThat(rows.entities.get(row.getKey())).isEqualTo(row.getValue().size());
        assertSameAnswer(seed + "/" + row.getKey(), VIEW.answer(rows.rows.get(row.getKey())), expected(row.getValue()));
      }
      // Then every entity leaves: every row comes back to empty and is dropped.
      for (JsonNode state : states.values()) {
        rows.change(state, JSON.objectNode());
      }
      assertThat(rows.rows).isEmpty();
    }
  }

  @Test
  @DisplayName("the customers example: count, exact sum, first and last order, also after the first order leaves")
  void customersExample() {
    ConfiguredView customers = new ConfiguredView("customers", List.of("orders"), "/customerEmail",
        Map.of("/status", List.of(JSON.textNode("paid"), JSON.textNode("shipped"))),
        List.of(new Field("orders", Aggregate.COUNT, null), new Field("spent", Aggregate.SUM, "/total"),
            new Field("firstOrder", Aggregate.MIN, "/placedAt"), new Field("lastOrder", Aggregate.MAX, "/placedAt")));
    ObjectNode first = order("paid", "0.1", "2026-01-01T10:00:00.000000000Z");
    ObjectNode second = order("shipped", "0.2", "2026-01-02T10:00:00.000000000Z");
    ObjectNode third = order("paid", "75.20", "2026-01-03T10:00:00.000000000Z");
    ObjectNode row = customers.emptyRow();
    for (ObjectNode order : List.of(first, second, third)) {
      ViewDefinition.Share share = customers.share("orders", order);
      assertThat(share.rowKey()).isEqualTo("ada@example.com");
      row = customers.add(row, share.values());
    }
    assertThat(customers.answer(row).toString()).isEqualTo("{\"orders\":3,\"spent\":75.5,"
        + "\"firstOrder\":\"2026-01-01T10:00:00.000000000Z\",\"lastOrder\":\"2026-01-03T10:00:00.000000000Z\"}");
    row = customers.subtract(row, customers.share("orders", first).values());
    assertThat(customers.answer(row).toString()).isEqualTo("{\"orders\":2,\"spent\":75.4,"
        + "\"firstOrder\":\"2026-01-02T10:00:00.000000000Z\",\"lastOrder\":\"2026-01-03T10:00:00.000000000Z\"}");
    assertThat(customers.share("orders", order("placed", "1", "2026-01-04T00:00:00Z"))).as("filtered out").isNull();
    assertThat(customers.share("users", first)).as("a type the view does not read").isNull();
  }

  private static ObjectNode order(String status, String total, String placedAt) {
    ObjectNode order = JSON.objectNode().put("status", status).put("customerEmail", "ada@example.com")
        .put("total", new BigDecimal(total)).put("placedAt", placedAt);
    order.putArray("items").addObject().put("sku", "book");
    return order;
  }

  @Test
  @DisplayName("min and max: numbers by value before strings, strings by code point (not UTF-16 units)")
  void ordering() {
    ObjectNode row = VIEW.emptyRow();
    for (JsonNode placedAt : List.of(JSON.textNode("\uD83D\uDE00"), JSON.textNode("\uFB01"), decimal("10.0"),
        JSON.numberNode(9), JSON.textNode("2026"))) {
      row = VIEW.add(row, VIEW.share("orders", JSON.objectNode().put("customer", "a").put("status", "paid")
          .set("placedAt", placedAt)).values());
    }
    JsonNode answer = VIEW.answer(row);
    assertThat(answer.get("firstOrder").toString()).isEqualTo("9");
    assertThat(answer.get("lastOrder").asText()).as("U+1F600 after U+FB01").isEqualTo("\uD83D\uDE00");
  }

  @Test
  @DisplayName("a share is the row key's text and only the values the fields read")
  void shares() {
    ObjectNode order = order("paid", "12.50", "2026-01-01T10:00:00.000000000Z");
    assertThat(VIEW.share("orders", order.deepCopy().put("customer", "ada")).values().toString())
        .isEqualTo("{\"/total\":\"12.5\",\"/placedAt\":\"\\\"2026-01-01T10:00:00.000000000Z\\\"\"}");
    assertThat(VIEW.share("orders", order.deepCopy().set("customer", decimal("10.0"))).rowKey()).isEqualTo("10");
    assertThat(VIEW.share("orders", order.deepCopy().put("customer", true)).rowKey()).isEqualTo("true");
    assertThat(VIEW.share("orders", order.deepCopy().put("customer", ""))).isNull();
    assertThat(VIEW.share("orders", order.deepCopy().putNull("customer"))).isNull();
    assertThat(VIEW.share("orders", order.deepCopy().set("customer", JSON.arrayNode().add("a")))).isNull();
    assertThat(VIEW.share("orders", order)).as("no key").isNull();
    assertThat(VIEW.share("orders", order.deepCopy().put("customer", "ada").set("tag", JSON.objectNode().put("big",
        "x".repeat(1000)))).values().get("/tag").asText()).as("an object travels as its kind only").isEqualTo("{}");
  }

  @Test
  @DisplayName("the fingerprint ignores the order of types, filter values and fields, and changes with the definition")
  void fingerprint() {
    List<JsonNode> statuses = List.of(JSON.textNode("paid"), JSON.textNode("shipped"));
    Field count = new Field("orders", Aggregate.COUNT, null);
    Field spent = new Field("spent", Aggregate.SUM, "/total");
    String fingerprint = new ConfiguredView("v", List.of("orders", "users"), "/k", Map.of("/status", statuses),
        List.of(count, spent)).fingerprint();
    assertThat(new ConfiguredView("v", List.of("users", "orders"), "/k", Map.of("/status", List.of(statuses.get(1), statuses.get(0))),
        List.of(spent, count)).fingerprint()).isEqualTo(fingerprint);
    assertThat(new ConfiguredView("other-name", List.of("orders", "users"), "/k", Map.of("/status", statuses),
        List.of(count, spent)).fingerprint()).as("the name is not the definition").isEqualTo(fingerprint);
    assertThat(new ConfiguredView("v", List.of("orders", "users"), "/k", Map.of("/status", statuses),
        List.of(count, new Field("spent", Aggregate.AVG, "/total"))).fingerprint()).isNotEqualTo(fingerprint);
    assertThat(new ConfiguredView("v", List.of("orders", "users"), "/k", Map.of(), List.of(count, spent)).fingerprint())
        .isNotEqualTo(fingerprint);
    assertThat(new ConfiguredView("v", List.of("orders", "users"), "/other", Map.of("/status", statuses),
        List.of(count, spent)).fingerprint()).isNotEqualTo(fingerprint);
  }
}
