package io.kfold.query;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.types.Envelopes;
import io.kfold.entity.IndexDefinition;
import io.kfold.entity.KfoldException;
import io.kfold.store.EntityStore;
import io.kfold.store.IndexScan;
import io.vertx.core.json.JsonObject;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A query of the entities of one type: conditions on its indexes, all of which must hold, a page
 * size, and where the previous page ended. Built from the parameters of {@code GET /v1/{type}}.
 *
 * <p>One condition is scanned and gives the answer's order, (value, key); the others are checked
 * on each entity's state. The scanned one is the first equality by index name, as an equality is
 * usually the narrowest, else the first range by name; without conditions, every entity is listed
 * in key order. The choice depends on the conditions only, so each page of a query scans the same
 * index and the cursor names a position in it.
 *
 * @param scanned    the condition scanned; null to list every entity
 * @param filters    the other conditions, checked on states
 * @param keysOnly   answer keys without states ({@code fields=key})
 * @param after      the position after which the page begins (from {@code after=}), null for the first page
 */
public record Query(String type, Condition scanned, List<Condition> filters, int limit, boolean keysOnly,
                    IndexScan.Position after) {

  public static final int DEFAULT_LIMIT = 50;
  public static final int MAX_LIMIT = 1000;
  /** Parameters of the route that are no conditions: read here, or by the HTTP layer. */
  private static final Set<String> NOT_CONDITIONS = Set.of("limit", "after", "fields", "stale", "minPosition",
      "timeoutMs");

  /**
   * Values of one index from {@code from} (inclusive) to {@code to} (exclusive), encoded as the
   * index holds them; either may be null for no bound. An equality is the range [v, v + 0x00): no
   * value lies between v and the next byte string after it.
   */
  public record Condition(IndexDefinition index, byte[] from, byte[] to, boolean equality) {
    boolean holds(byte[] value) {
      return (from == null || Arrays.compareUnsigned(value, from) >= 0)
          && (to == null || Arrays.compareUnsigned(value, to) < 0);
    }

    static Condition equal(IndexDefinition index, byte[] value) {
      byte[] next = Arrays.copyOf(value, value.length + 1);
      return new Condition(index, value, next, true);
    }
  }

  /** The index the query scans. */
  public String scannedIndex() {
    return scanned == null ? EntityStore.ALL_ENTITIES : scanned.index().name();
  }

  /**
   * The parameters of a query given as a JSON object (the event bus's {@code kfold.<type>.query}, and
   * the typed client over HTTP, so that both refuse the same): each member a string, number or
   * boolean, taken by its text.
   */
  public static Map<String, List<String>> parameters(JsonObject members) {
    Map<String, List<String>> parameters = new LinkedHashMap<>();
    if (members == null) {
      return parameters;
    }
    for (String name : members.fieldNames()) {
      Object value = members.getValue(name);
      if (!(value instanceof String || value instanceof Number || value instanceof Boolean)) {
        throw KfoldException.badRequest("query member '" + name + "' must be a string, a number or a boolean, was "
            + (value == null ? "null" : value.getClass().getSimpleName()));
      }
      parameters.put(name, List.of(value.toString()));
    }
    return parameters;
  }

  /**
   * The query the parameters ask for.
   *
   * @param parameters each parameter's values, in the order given
   * @throws IllegalArgumentException saying what is wrong, for a 400: an unknown index, a number
   *                                  index given something else, a bad limit or fields, a malformed cursor
   */
  public static Query parse(String type, List<IndexDefinition> indexes, Map<String, List<String>> parameters) {
    Map<String, IndexDefinition> byName = new LinkedHashMap<>();
    indexes.forEach(index -> byName.put(index.name(), index));
    Map<String, String[]> bounds = new LinkedHashMap<>();  // per index: equality, from, to
    for (Map.Entry<String, List<String>> parameter : parameters.entrySet()) {
      String name = parameter.getKey();
      if (NOT_CONDITIONS.contains(name)) {
        continue;
      }
      int dot = name.lastIndexOf('.');
      String suffix = dot < 0 ? "" : name.substring(dot + 1);
      String indexName = dot >= 0 && (suffix.equals("from") || suffix.equals("to")) ? name.substring(0, dot) : name;
      if (!byName.containsKey(indexName)) {
        throw new IllegalArgumentException("'" + name + "' names no index of " + type + "; its indexes are "
            + byName.keySet() + (dot < 0 ? "" : ", each with .from and .to for a range"));
      }
      String value = single(name, parameter.getValue());
      String[] slots = bounds.computeIfAbsent(indexName, n -> new String[3]);
      slots[indexName.equals(name) ? 0 : suffix.equals("from") ? 1 : 2] = value;
    }
    List<Condition> conditions = new ArrayList<>();
    bounds.forEach((name, slots) -> {
      IndexDefinition index = byName.get(name);
      if (slots[0] != null && (slots[1] != null || slots[2] != null)) {
        throw new IllegalArgumentException("'" + name + "' has both a value and a range; give one or the other");
      }
      try {
        conditions.add(slots[0] != null ? Condition.equal(index, IndexValues.parse(slots[0], index.kind()))
            : new Condition(index, slots[1] == null ? null : IndexValues.parse(slots[1], index.kind()),
                slots[2] == null ? null : IndexValues.parse(slots[2], index.kind()), false));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("index '" + name + "' holds numbers: " + e.getMessage());
      }
    });
    conditions.sort(Comparator.comparing((Condition c) -> !c.equality()).thenComparing(c -> c.index().name()));
    Condition scanned = conditions.isEmpty() ? null : conditions.get(0);
    List<Condition> filters = conditions.isEmpty() ? List.of() : List.copyOf(conditions.subList(1, conditions.size()));

    int limit = DEFAULT_LIMIT;
    if (parameters.containsKey("limit")) {
      String raw = single("limit", parameters.get("limit"));
      try {
        limit = Integer.parseInt(raw);
      } catch (NumberFormatException e) {
        limit = -1;
      }
      if (limit < 1 || limit > MAX_LIMIT) {
        throw new IllegalArgumentException("limit is '" + raw + "'; expected a whole number from 1 to " + MAX_LIMIT);
      }
    }
    String fields = parameters.containsKey("fields") ? single("fields", parameters.get("fields")) : "state";
    if (!fields.equals("state") && !fields.equals("key")) {
      throw new IllegalArgumentException("fields is '" + fields + "'; expected 'state' or 'key'");
    }
    String scannedName = scanned == null ? EntityStore.ALL_ENTITIES : scanned.index().name();
    IndexScan.Position after = parameters.containsKey("after")
        ? decodeCursor(single("after", parameters.get("after")), scannedName) : null;
    return new Query(type, scanned, filters, limit, fields.equals("key"), after);
  }

  private static String single(String name, List<String> values) {
    if (values.size() != 1) {
      throw new IllegalArgumentException("'" + name + "' is given " + values.size() + " times; give it once");
    }
    return values.get(0);
  }

  /**
   * The cursor of a position in an index: opaque to clients, it names the index too, so that a
   * cursor passed to another query is refused instead of skipping or repeating entities.
   */
  public static String cursor(String index, IndexScan.Position position) {
    ObjectNode cursor = JsonNodeFactory.instance.objectNode()
        .put("i", index)
        .put("v", Base64.getUrlEncoder().withoutPadding().encodeToString(position.value()))
        .put("k", position.key());
    return Base64.getUrlEncoder().withoutPadding().encodeToString(Envelopes.toBytes(cursor));
  }

  static IndexScan.Position decodeCursor(String cursor, String index) {
    JsonNode node;
    try {
      node = Envelopes.parse(Base64.getUrlDecoder().decode(cursor));
    } catch (Exception e) {
      throw new IllegalArgumentException("'after' is not a cursor this API gave");
    }
    if (node == null || !node.path("i").isTextual() || !node.path("v").isTextual() || !node.path("k").isTextual()) {
      throw new IllegalArgumentException("'after' is not a cursor this API gave");
    }
    if (!node.get("i").textValue().equals(index)) {
      throw new IllegalArgumentException("'after' is the cursor of another query (of "
          + (node.get("i").textValue().isEmpty() ? "a list of every entity" : "index '" + node.get("i").textValue() + "'")
          + "); pass it to the query that gave it");
    }
    try {
      return new IndexScan.Position(Base64.getUrlDecoder().decode(node.get("v").textValue()),
          node.get("k").textValue());
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("'after' is not a cursor this API gave");
    }
  }
}
