package io.kfold.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * The keys a configuration may hold. A key kfold does not know is a typo, which would otherwise be
 * ignored in silence, so it stops the start, naming the nearest known key. The same tree maps
 * {@code KFOLD_*} variables onto keys, also onto keys the file leaves out (a worker's
 * {@code maxInFlightKeys}, a target's {@code deleteOn}).
 */
public final class ConfigKeys {

  /** What may stand at a place of the configuration. */
  public sealed interface Shape permits Value, Section, Named, Listed, Free, ByKind, Properties {}

  /** A scalar, or a list of scalars. */
  public record Value() implements Shape {}

  /** An object of known keys, each of its own shape. */
  public record Section(SortedMap<String, Shape> keys) implements Shape {
    public Section(Map<String, Shape> keys) {
      this(new TreeMap<>(keys));
    }
  }

  /** An object whose keys are names the user chooses (workers by name), each of shape {@code entry}. */
  public record Named(Shape entry) implements Shape {}

  /** A list of {@code item}s. */
  public record Listed(Shape item) implements Shape {}

  /** JSON of the user's own (a request body, a command to send): any keys. */
  public record Free() implements Shape {}

  /** A section whose keys depend on the value of the sibling key {@code field}: a target's on its worker's kind. */
  public record ByKind(String field, Map<String, Section> byValue) implements Shape {}

  /**
   * Settings of another library by their own names ({@code sasl.mechanism}), each a value: the keys are
   * that library's to check. A variable reaches any of them, its words joined by dots in lower case
   * ({@code KFOLD_KAFKA_PROPERTIES_SASL_MECHANISM} → {@code sasl.mechanism}), as Kafka's images do.
   */
  public record Properties() implements Shape {}

  public static final Value VALUE = new Value();
  public static final Properties PROPERTIES = new Properties();
  public static final Free FREE = new Free();

  /** A section of scalars. */
  public static Section values(String... keys) {
    Map<String, Shape> shapes = new LinkedHashMap<>();
    for (String key : keys) {
      shapes.put(key, VALUE);
    }
    return new Section(shapes);
  }

  private ConfigKeys() {}

  // The file.

  /** Every key of {@code tree} that {@code shape} does not know, as a sentence naming the nearest known key. */
  public static List<String> unknownKeys(JsonNode tree, Shape shape) {
    List<String> unknown = new ArrayList<>();
    check(tree, shape, "", null, unknown);
    return unknown;
  }

  private static void check(JsonNode node, Shape shape, String path, JsonNode parent, List<String> unknown) {
    if (shape instanceof ByKind byKind) {
      Section section = byKind.byValue().get(parent.path(byKind.field()).asText());
      if (section != null) {  // an unknown kind is the reader's to report
        check(node, section, path, parent, unknown);
      }
    } else if (shape instanceof Section section && node.isObject()) {
      for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> field = it.next();
        Shape child = section.keys().get(field.getKey());
        if (child == null) {
          unknown.add("unknown key '" + join(path, field.getKey()) + "' — did you mean '"
              + join(path, nearest(field.getKey(), section.keys().keySet())) + "'?");
        } else {
          check(field.getValue(), child, join(path, field.getKey()), node, unknown);
        }
      }
    } else if (shape instanceof Named named && node.isObject()) {
      node.fields().forEachRemaining(field -> check(field.getValue(), named.entry(), join(path, field.getKey()), node,
          unknown));
    } else if (shape instanceof Listed listed && node.isArray()) {
      for (int i = 0; i < node.size(); i++) {
        check(node.get(i), listed.item(), path + "[" + i + "]", node, unknown);
      }
    }
    // A value, or JSON of the user's own: nothing below it to check. A value of the wrong type is
    // the reader's to report.
  }

  // The environment.

  /**
   * Sets the key each {@code KFOLD_*} variable names, by its path in upper snake case
   * ({@code fold.maxPollRecords} ← {@code KFOLD_FOLD_MAX_POLL_RECORDS}, {@code effects.shipment-request.retry.attempts}
   * ← {@code KFOLD_EFFECTS_SHIPMENT_REQUEST_RETRY_ATTEMPTS}), creating the sections it lacks. A worker
   * is named by its key in the file; a list (the types) cannot be reached.
   *
   * @param notKeys variables of the prefix that kfold reads for another purpose
   * @throws IllegalArgumentException naming every variable that names no key, and the nearest that does
   */
  public static void applyEnvironment(ObjectNode tree, Shape shape, String prefix, Map<String, String> env,
                                      Set<String> notKeys) {
    List<String> unknown = new ArrayList<>();
    for (String name : new TreeMap<>(env).keySet()) {
      if (!name.startsWith(prefix + "_") || notKeys.contains(name)) {
        continue;
      }
      List<String> words = Arrays.asList(name.substring(prefix.length() + 1).split("_", -1));
      List<List<String>> paths = new ArrayList<>();
      List<String> lists = new ArrayList<>();
      resolve(shape, tree, null, words, 0, new ArrayList<>(), paths, lists);
      if (paths.size() == 1) {
        set(tree, paths.get(0), env.get(name), name);
      } else if (paths.isEmpty()) {
        unknown.add(noKey(name, shape, tree, prefix, lists));
      } else {
        unknown.add("environment variable " + name + " could name " + paths.stream().map(p -> String.join(".", p))
            .toList() + "; rename a worker so that its name tells them apart");
      }
    }
    if (!unknown.isEmpty()) {
      throw new IllegalArgumentException("configuration: " + String.join("; ", unknown));
    }
  }

  /** Why a variable names no key, and the nearest that does. */
  private static String noKey(String name, Shape shape, JsonNode tree, String prefix, List<String> lists) {
    if (!lists.isEmpty()) {
      return "environment variable " + name + " names an item of the list '" + lists.get(0)
          + "', which variables cannot reach: set it in the configuration file";
    }
    Map<String, String> known = new LinkedHashMap<>();
    variables(shape, tree, null, prefix, "", known);
    String inside = known.keySet().stream().filter(v -> v.startsWith(name + "_")).findFirst().orElse(null);
    if (inside != null) {
      return "environment variable " + name + " names a section, not a value: set its keys one by one, such as "
          + inside + " (" + known.get(inside) + ")";
    }
    String nearest = nearest(name, known.keySet());
    return "environment variable " + name + " names no key" + (nearest == null ? ""
        : " — did you mean " + nearest + " (" + known.get(nearest) + ")?");
  }

  /**
   * Collects in {@code found} every path of keys whose words are {@code words} from {@code at} on,
   * and in {@code lists} the lists the words lead into.
   */
  private static void resolve(Shape shape, JsonNode node, JsonNode parent, List<String> words, int at,
                              List<String> path, List<List<String>> found, List<String> lists) {
    if (shape instanceof Listed) {
      lists.add(String.join(".", path));
    } else if (shape instanceof Properties) {
      if (at < words.size()) {
        List<String> property = new ArrayList<>(path);
        property.add(String.join(".", words.subList(at, words.size())).toLowerCase(java.util.Locale.ROOT));
        found.add(List.copyOf(property));
      }
    } else if (shape instanceof Value) {
      if (at == words.size()) {
        found.add(List.copyOf(path));
      }
    } else if (shape instanceof Free) {
      // JSON of the user's own: only what the file has can be reached, a value replaced.
      if (at == words.size() && !node.isContainerNode()) {
        found.add(List.copyOf(path));
      } else if (node.isObject()) {
        node.fieldNames().forEachRemaining(key -> descend(FREE, node, key, words, at, path, found, lists));
      }
    } else if (shape instanceof ByKind byKind) {
      Section section = byKind.byValue().get(parent.path(byKind.field()).asText());
      for (Section candidate : section != null ? List.of(section) : byKind.byValue().values()) {
        resolve(candidate, node, parent, words, at, path, found, lists);
      }
    } else if (shape instanceof Section section) {
      section.keys().forEach((key, child) -> descend(child, node, key, words, at, path, found, lists));
    } else if (shape instanceof Named named && node.isObject()) {
      node.fieldNames().forEachRemaining(key -> descend(named.entry(), node, key, words, at, path, found, lists));
    }
  }

  private static void descend(Shape child, JsonNode node, String key, List<String> words, int at, List<String> path,
                              List<List<String>> found, List<String> lists) {
    List<String> keyWords = Arrays.asList(snake(key).split("_"));
    if (at + keyWords.size() <= words.size() && words.subList(at, at + keyWords.size()).equals(keyWords)) {
      path.add(key);
      resolve(child, node.path(key), node, words, at + keyWords.size(), path, found, lists);
      path.remove(path.size() - 1);
    }
  }

  /** Every variable that names a key, with the key's path: the candidates for "did you mean". */
  private static void variables(Shape shape, JsonNode node, JsonNode parent, String name, String path,
                                Map<String, String> out) {
    if (shape instanceof Value || (shape instanceof Free && !node.isContainerNode())) {
      out.put(name, path);
    } else if (shape instanceof Properties && node.isObject()) {
      node.fieldNames().forEachRemaining(key -> out.put(name + "_" + key.replace('.', '_').toUpperCase(java.util.Locale.ROOT),
          join(path, key)));
    } else if (shape instanceof Free && node.isObject()) {
      node.fieldNames().forEachRemaining(key -> variables(FREE, node.path(key), node, name + "_" + snake(key),
          join(path, key), out));
    } else if (shape instanceof ByKind byKind) {
      Section section = byKind.byValue().get(parent.path(byKind.field()).asText());
      for (Section candidate : section != null ? List.of(section) : byKind.byValue().values()) {
        variables(candidate, node, parent, name, path, out);
      }
    } else if (shape instanceof Section section) {
      section.keys().forEach((key, child) -> variables(child, node.path(key), node, name + "_" + snake(key),
          join(path, key), out));
    } else if (shape instanceof Named named && node.isObject()) {
      node.fieldNames().forEachRemaining(key -> variables(named.entry(), node.path(key), node, name + "_" + snake(key),
          join(path, key), out));
    }
  }

  private static void set(ObjectNode tree, List<String> path, String value, String variable) {
    ObjectNode node = tree;
    for (String key : path.subList(0, path.size() - 1)) {
      JsonNode child = node.path(key);
      if (child.isMissingNode() || child.isNull()) {
        child = node.putObject(key);
      }
      if (!(child instanceof ObjectNode section)) {
        throw new IllegalArgumentException("configuration: environment variable " + variable + " sets a key under '"
            + key + "', which the file holds as " + child + ", not as a section");
      }
      node = section;
    }
    node.put(path.get(path.size() - 1), value);
  }

  /** The words of a key in a variable's name: maxInFlightKeys → MAX_IN_FLIGHT_KEYS, shipment-request → SHIPMENT_REQUEST. */
  static String snake(String key) {
    return key.replaceAll("([a-z0-9])([A-Z])", "$1_$2").replace('-', '_').toUpperCase();
  }

  private static String join(String path, String key) {
    return path.isEmpty() ? key : path + "." + key;
  }

  /** The candidate fewest edits away, ignoring case; ties go to the first in order. */
  static String nearest(String wrong, Iterable<String> candidates) {
    List<String> all = new ArrayList<>();
    candidates.forEach(all::add);
    return all.stream().min(Comparator.comparingInt(c -> distance(wrong.toLowerCase(), c.toLowerCase()))).orElse(null);
  }

  /** Levenshtein distance: insertions, deletions and substitutions. */
  static int distance(String a, String b) {
    int[] previous = new int[b.length() + 1];
    int[] current = new int[b.length() + 1];
    for (int j = 0; j <= b.length(); j++) {
      previous[j] = j;
    }
    for (int i = 1; i <= a.length(); i++) {
      current[0] = i;
      for (int j = 1; j <= b.length(); j++) {
        int substitution = previous[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1);
        current[j] = Math.min(substitution, Math.min(previous[j], current[j - 1]) + 1);
      }
      int[] swap = previous;
      previous = current;
      current = swap;
    }
    return previous[b.length()];
  }
}
