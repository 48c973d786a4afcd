package io.kfold.view;

import com.fasterxml.jackson.core.JsonPointer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.types.Envelopes;
import io.kfold.entity.ViewDefinition;
import io.kfold.query.IndexValues;

import java.io.IOException;
import java.math.BigDecimal;
import java.math.MathContext;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Pattern;

/**
 * A view declared in configuration: rows keyed by the value at a JSON pointer of the state, an
 * optional {@code where} filter, and fields aggregated with {@link Aggregate}s.
 *
 * <p>Exact under retraction: {@link #add} and {@link #subtract} are inverses and commute, so a row
 * is the same whatever order its contributions come in, and a row whose entities all left equals
 * {@link #emptyRow()} again. To keep this true whatever JSON reader the row and the share travel
 * through, numbers are kept in them as their text (a reader that turns decimals into doubles would
 * round a sum), and the members of {@code min}, {@code max} and {@code distinctCount} are kept with
 * a count each, so that the extreme is known again when its member leaves.
 *
 * <p>Values and their order:
 * <ul>
 *   <li>A value is known by its canonical JSON text: a string is quoted, a number is its exact
 *       value with trailing zeros dropped ({@code 10}, {@code 10.0} and {@code 1e1} are one value),
 *       {@code true}/{@code false}. A missing or null value contributes nothing to a field.</li>
 *   <li>{@code sum} and {@code avg} take numbers; {@code min} and {@code max} take numbers and
 *       strings; {@code distinctCount} takes numbers, strings and booleans. Any other value (an
 *       object, an array, a string to sum) is skipped and counted: the answer's {@code _skipped}
 *       holds, per field, how many of the row's entities were skipped.</li>
 *   <li>{@code min}/{@code max} order numbers by value and strings by Unicode code point (so ISO-8601
 *       times of one fixed width sort by time); every number sorts before every string.</li>
 *   <li>{@code sum} of no number is 0; {@code avg}, {@code min} and {@code max} of none are null;
 *       {@code avg} is the exact sum divided by the number of members with a number, rounded to 34
 *       significant digits.</li>
 * </ul>
 */
public final class ConfiguredView implements ViewDefinition {

  /** What a field computes over the entities of a row. */
  public enum Aggregate {
    COUNT, SUM, MIN, MAX, AVG, DISTINCT_COUNT;

    /** The name in configuration: {@code count}, {@code sum}, ..., {@code distinctCount}. */
    public String configName() {
      return this == DISTINCT_COUNT ? "distinctCount" : name().toLowerCase(Locale.ROOT);
    }

    /** The aggregate of that configuration name, or null. */
    public static Aggregate named(String name) {
      for (Aggregate aggregate : values()) {
        if (aggregate.configName().equals(name)) {
          return aggregate;
        }
      }
      return null;
    }

    public static List<String> configNames() {
      return java.util.Arrays.stream(values()).map(Aggregate::configName).toList();
    }

    /** Whether it aggregates a value of the state ({@code sum: /total}) rather than counting entities. */
    public boolean takesPointer() {
      return this != COUNT;
    }

    /** Whether a value of this kind counts in the aggregate; others are skipped and counted. */
    boolean takes(JsonNode value) {
      return switch (this) {
        case COUNT -> true;
        case SUM, AVG -> value.isNumber();
        case MIN, MAX -> value.isNumber() || value.isTextual();
        case DISTINCT_COUNT -> value.isNumber() || value.isTextual() || value.isBoolean();
      };
    }
  }

  /**
   * A field of the rows.
   *
   * @param path the JSON pointer whose values it aggregates; null for {@code count}
   */
  public record Field(String name, Aggregate aggregate, String path) {
    public Field {
      if (name == null || !FIELD_NAME.matcher(name).matches()) {
        throw new IllegalArgumentException("field name '" + name + "' is invalid: letters, digits, '_' and '-',"
            + " starting with a letter, at most 63");
      }
      if (aggregate == null) {
        throw new IllegalArgumentException("field '" + name + "' has no aggregate");
      }
      if (aggregate.takesPointer()) {
        pointer(path);
      } else if (path != null) {
        throw new IllegalArgumentException("count takes no pointer: it counts the row's entities");
      }
    }

    /** How the fingerprint spells it. */
    String canonical() {
      return aggregate.takesPointer() ? aggregate.configName() + " " + path : aggregate.configName();
    }
  }

  /** A view's name: it is part of topic names and URLs. */
  public static final Pattern NAME = Pattern.compile("[a-z][a-z0-9-]{0,62}");
  /** A field's name; one starting with '_' is kfold's, such as {@code _skipped}. */
  static final Pattern FIELD_NAME = Pattern.compile("[A-Za-z][A-Za-z0-9_-]{0,62}");
  /** Raised when the layout of rows or shares changes, so that views built with the old one are rebuilt. */
  private static final String FORMAT = "configured-view/1";
  private static final JsonNodeFactory JSON = JsonNodeFactory.instance;

  private final String name;
  private final List<String> from;
  private final String key;
  private final JsonPointer keyPointer;
  /** Per pointer, the canonical texts of the values it allows. */
  private final Map<String, Set<String>> where;
  private final Map<JsonPointer, Set<String>> wherePointers = new LinkedHashMap<>();
  private final List<Field> fields;
  /** The pointers the fields read: what a share carries. */
  private final Map<String, JsonPointer> paths = new LinkedHashMap<>();

  /**
   * @param where per JSON pointer, the values it may have (scalars); an entity counts only when every
   *              pointer has one of its values. Empty: every entity counts.
   */
  public ConfiguredView(String name, List<String> from, String key, Map<String, List<JsonNode>> where,
                        List<Field> fields) {
    if (name == null || !NAME.matcher(name).matches()) {
      throw new IllegalArgumentException("view name '" + name + "' is invalid: lower-case letters, digits and '-',"
          + " starting with a letter, at most 63 (it is part of topic names and URLs)");
    }
    if (from == null || from.isEmpty()) {
      throw new IllegalArgumentException("'from' must name at least one entity type");
    }
    if (new LinkedHashSet<>(from).size() != from.size()) {
      throw new IllegalArgumentException("'from' names a type twice: " + from);
    }
    this.name = name;
    this.from = List.copyOf(from);
    this.key = key;
    this.keyPointer = pointer(key);
    Map<String, Set<String>> allowed = new LinkedHashMap<>();
    for (Map.Entry<String, List<JsonNode>> filter : where.entrySet()) {
      JsonPointer pointer = pointer(filter.getKey());
      if (filter.getValue().isEmpty()) {
        throw new IllegalArgumentException("'where' " + filter.getKey() + " allows no value: list at least one");
      }
      Set<String> texts = new TreeSet<>();
      for (JsonNode value : filter.getValue()) {
        String text = value == null ? null : canonicalText(value);
        if (text == null || value.isContainerNode()) {
          throw new IllegalArgumentException("'where' " + filter.getKey() + " allows " + value
              + ": only strings, numbers and booleans");
        }
        texts.add(text);
      }
      allowed.put(filter.getKey(), texts);
      wherePointers.put(pointer, texts);
    }
    this.where = allowed;
    if (fields == null || fields.isEmpty()) {
      throw new IllegalArgumentException("'fields' must declare at least one field");
    }
    Set<String> names = new LinkedHashSet<>();
    for (Field field : fields) {
      if (!names.add(field.name())) {
        throw new IllegalArgumentException("field '" + field.name() + "' is declared twice");
      }
      if (field.aggregate().takesPointer()) {
        paths.putIfAbsent(field.path(), pointer(field.path()));
      }
    }
    this.fields = List.copyOf(fields);
  }

  /** The compiled pointer, or an exception saying why {@code path} is not one. */
  public static JsonPointer pointer(String path) {
    if (path == null || !path.startsWith("/")) {
      throw new IllegalArgumentException("'" + path + "' is not a JSON pointer to a member of the state"
          + " (such as /customerEmail)");
    }
    try {
      return JsonPointer.compile(path);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("'" + path + "' is not a valid JSON pointer: " + e.getMessage(), e);
    }
  }

  @Override
  public String name() {
    return name;
  }

  @Override
  public List<String> from() {
    return from;
  }

  public String key() {
    return key;
  }

  public List<Field> fields() {
    return fields;
  }

  /**
   * The view's kind and format, its sorted types, key, filter (pointers and values sorted) and
   * fields by name: the same for any order of the declaration's lists and maps.
   */
  @Override
  public String fingerprint() {
    ObjectNode text = JSON.objectNode();
    from.stream().sorted().forEach(text.putArray("from")::add);
    text.put("key", keyPointer.toString());
    ObjectNode filter = text.putObject("where");
    new TreeMap<>(where).forEach((pointer, values) -> values.forEach(filter.withArray(pointer)::add));
    ObjectNode byName = text.putObject("fields");
    fields.stream().sorted(java.util.Comparator.comparing(Field::name))
        .forEach(field -> byName.put(field.name(), field.canonical()));
    return FORMAT + " " + text;
  }

  /**
   * The row is the key's value as text: a string as it is, a number or boolean by its canonical JSON
   * text ({@code 10.0} → {@code 10}). A missing, null or empty key, or an object or array, is no row.
   * {@code values} holds, per pointer the fields read, the canonical JSON text of its value
   * ({@code {"/total": "25.5", "/placedAt": "\"2026-…\""}}); an object or array is {@code "{}"} or
   * {@code "[]"}, as only its kind matters (it is skipped); a missing or null value is left out.
   */
  @Override
  public Share share(String type, JsonNode state) {
    if (!from.contains(type) || state == null) {
      return null;
    }
    String rowKey = keyText(IndexValues.at(state, keyPointer));
    if (rowKey == null) {
      return null;
    }
    for (Map.Entry<JsonPointer, Set<String>> filter : wherePointers.entrySet()) {
      JsonNode value = IndexValues.at(state, filter.getKey());
      if (value == null || !filter.getValue().contains(canonicalText(value))) {
        return null;
      }
    }
    ObjectNode values = JSON.objectNode();
    paths.forEach((path, pointer) -> {
      JsonNode value = IndexValues.at(state, pointer);
      if (value != null) {
        values.put(path, value.isObject() ? "{}" : value.isArray() ? "[]" : canonicalText(value));
      }
    });
    return new Share(rowKey, values);
  }

  /**
   * Per field: {@code count} a number; {@code sum} {@code {sum, skipped}}; {@code avg} {@code {sum, n,
   * skipped}}; {@code min}, {@code max}, {@code distinctCount} {@code {members: {text: count}, skipped}},
   * where sums are number texts and members are canonical JSON texts.
   */
  @Override
  public ObjectNode emptyRow() {
    ObjectNode row = JSON.objectNode();
    for (Field field : fields) {
      switch (field.aggregate()) {
        case COUNT -> row.put(field.name(), 0L);
        case SUM -> row.putObject(field.name()).put("sum", "0").put("skipped", 0L);
        case AVG -> row.putObject(field.name()).put("sum", "0").put("n", 0L).put("skipped", 0L);
        case MIN, MAX, DISTINCT_COUNT -> {
          ObjectNode state = row.putObject(field.name());
          state.putObject("members");
          state.put("skipped", 0L);
        }
      }
    }
    return row;
  }

  @Override
  public ObjectNode add(ObjectNode row, JsonNode values) {
    return change(row, values, 1);
  }

  @Override
  public ObjectNode subtract(ObjectNode row, JsonNode values) {
    return change(row, values, -1);
  }

  /**
   * Adds ({@code sign} 1) or takes out ({@code sign} -1) one entity's values. Counts may go below
   * zero for a while if a subtraction comes before its addition; the row is still exact once both came.
   */
  private ObjectNode change(ObjectNode row, JsonNode values, int sign) {
    // The values are all parsed before the row changes: one that is not JSON text throws and leaves
    // the row as it was (the fold changes its rows in place, see ViewType.applyInPlace).
    JsonNode[] parsed = new JsonNode[fields.size()];
    for (int i = 0; i < fields.size(); i++) {
      JsonNode text = fields.get(i).aggregate() == Aggregate.COUNT ? null : values.get(fields.get(i).path());
      parsed[i] = text == null || text.isNull() ? null : parse(text.asText());
    }
    for (int i = 0; i < fields.size(); i++) {
      Field field = fields.get(i);
      if (field.aggregate() == Aggregate.COUNT) {
        row.put(field.name(), row.path(field.name()).asLong() + sign);
        continue;
      }
      JsonNode value = parsed[i];
      if (value == null) {
        continue;  // missing or null in the state: nothing to aggregate
      }
      JsonNode text = values.get(field.path());
      ObjectNode state = (ObjectNode) row.get(field.name());
      if (!field.aggregate().takes(value)) {
        state.put("skipped", state.path("skipped").asLong() + sign);
        continue;
      }
      switch (field.aggregate()) {
        case SUM, AVG -> {
          BigDecimal sum = new BigDecimal(state.path("sum").asText("0"));
          BigDecimal number = value.decimalValue();
          state.put("sum", numberText(sign > 0 ? sum.add(number) : sum.subtract(number)));
          if (field.aggregate() == Aggregate.AVG) {
            state.put("n", state.path("n").asLong() + sign);
          }
        }
        default -> {
          ObjectNode members = (ObjectNode) state.get("members");
          long count = members.path(text.asText()).asLong() + sign;
          if (count == 0) {
            members.remove(text.asText());
          } else {
            members.put(text.asText(), count);
          }
        }
      }
    }
    return row;
  }

  /** The fields' values, and {@code _skipped} (per field, entities whose value it could not take) when any. */
  @Override
  public JsonNode answer(ObjectNode row) {
    ObjectNode answer = JSON.objectNode();
    ObjectNode skipped = JSON.objectNode();
    for (Field field : fields) {
      JsonNode state = row.path(field.name());
      switch (field.aggregate()) {
        case COUNT -> answer.put(field.name(), state.asLong());
        case SUM -> answer.set(field.name(), numberNode(new BigDecimal(state.path("sum").asText("0"))));
        case AVG -> {
          long n = state.path("n").asLong();
          answer.set(field.name(), n <= 0 ? JSON.nullNode() : numberNode(new BigDecimal(state.path("sum").asText("0"))
              .divide(BigDecimal.valueOf(n), MathContext.DECIMAL128)));
        }
        case MIN, MAX -> answer.set(field.name(), extreme(state.path("members"), field.aggregate() == Aggregate.MAX));
        case DISTINCT_COUNT -> {
          long distinct = 0;
          for (Iterator<JsonNode> it = state.path("members").elements(); it.hasNext(); ) {
            distinct += it.next().asLong() > 0 ? 1 : 0;
          }
          answer.put(field.name(), distinct);
        }
      }
      if (state.path("skipped").asLong() != 0) {
        skipped.put(field.name(), state.path("skipped").asLong());
      }
    }
    if (!skipped.isEmpty()) {
      answer.set("_skipped", skipped);
    }
    return answer;
  }

  /** The least (or greatest) member present: numbers by value before strings by code point. */
  private static JsonNode extreme(JsonNode members, boolean greatest) {
    JsonNode best = null;
    for (Iterator<Map.Entry<String, JsonNode>> it = members.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> member = it.next();
      if (member.getValue().asLong() <= 0) {
        continue;
      }
      JsonNode value = parse(member.getKey());
      int order = best == null ? 0 : compare(value, best);
      if (best == null || (greatest ? order > 0 : order < 0)) {
        best = value;
      }
    }
    if (best == null) {
      return JSON.nullNode();
    }
    return best.isNumber() ? numberNode(best.decimalValue()) : best;
  }

  /** Numbers by value, before strings, which go by code point. */
  static int compare(JsonNode a, JsonNode b) {
    if (a.isNumber() != b.isNumber()) {
      return a.isNumber() ? -1 : 1;
    }
    if (a.isNumber()) {
      return a.decimalValue().compareTo(b.decimalValue());
    }
    return compareCodePoints(a.asText(), b.asText());
  }

  /** Unicode code point order; {@link String#compareTo} compares UTF-16 units, which differs above U+FFFF. */
  static int compareCodePoints(String a, String b) {
    int i = 0;
    int j = 0;
    while (i < a.length() && j < b.length()) {
      int x = a.codePointAt(i);
      int y = b.codePointAt(j);
      if (x != y) {
        return Integer.compare(x, y);
      }
      i += Character.charCount(x);
      j += Character.charCount(y);
    }
    return Boolean.compare(i < a.length(), j < b.length());
  }

  /** A scalar key as row text; null for none. */
  static String keyText(JsonNode value) {
    if (value == null || value.isNull() || value.isMissingNode() || value.isContainerNode()) {
      return null;
    }
    String text = value.isTextual() ? value.asText() : canonicalText(value);
    return text.isEmpty() ? null : text;
  }

  /** The canonical JSON text of a scalar: by which a member, a filter value or a number key is known. */
  static String canonicalText(JsonNode value) {
    if (value.isNumber()) {
      return numberText(value.decimalValue());
    }
    return value.toString();
  }

  /** A number's exact value without trailing zeros, as JSON: {@code 10}, {@code 25.5}, {@code 1E+40}. */
  static String numberText(BigDecimal number) {
    BigDecimal stripped = number.stripTrailingZeros();
    if (stripped.scale() < 0 && stripped.precision() - stripped.scale() <= 40) {
      stripped = stripped.setScale(0);
    }
    return stripped.toString();
  }

  /** A number as the JSON number of its canonical text. */
  private static JsonNode numberNode(BigDecimal number) {
    BigDecimal canonical = new BigDecimal(numberText(number));
    return canonical.scale() == 0 ? JSON.numberNode(canonical.toBigIntegerExact()) : JSON.numberNode(canonical);
  }

  private static JsonNode parse(String text) {
    try {
      return Envelopes.JSON.readTree(text);
    } catch (IOException e) {
      throw new IllegalArgumentException("a view value is not JSON text: " + text, e);
    }
  }
}
