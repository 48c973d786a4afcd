package io.kfold.query;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.kfold.TestNodes;
import io.kfold.types.Envelopes;
import io.kfold.store.EntityStore;
import io.kfold.store.IndexScan;
import io.kfold.store.StoredEntity;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;

import java.io.IOException;
import java.math.BigDecimal;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.function.Function;
import java.util.function.Predicate;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A random history of merge patches to the type "items" (a string index on an array, a number
 * index, a string index on a nested member), the test's own fold of it, and the checks that a
 * store's indexes and the queries over them agree with that fold: for the tests of index entries
 * under restarts, kill -9 and restores.
 */
final class IndexModel {

  static final String TYPE = "items";
  static final String[] TAGS = {"a", "b", "c", "d", "e"};
  static final String[] CITIES = {"Oslo", "Lima", "Pune", "Åre"};

  /** One page of a query: its keys and its cursor to the next, null on the last. */
  record Page(List<String> keys, String next) {}

  /** Answers one page of a query on "items": through a store, or a node's HTTP API. */
  interface Pages {
    Page page(Map<String, String> conditions, int limit, boolean keysOnly, String after) throws Exception;
  }

  private final int keys;
  private final Random random;
  /** The test's own fold of what it wrote: key → state, as plain JSON. */
  private final Map<String, ObjectNode> model = new TreeMap<>();
  /** Per events partition, the offset after the last event written. */
  private final Map<Integer, Long> written = new HashMap<>();
  private int events;

  IndexModel(int keys, long seed) {
    this.keys = keys;
    this.random = new Random(seed);
  }

  /**
   * The environment of a node of {@code app} whose only type is "items" with its three indexes:
   * a configuration file written to {@code dir}, named by KFOLD_CONFIG.
   */
  static Map<String, String> env(String app, Path dir) throws IOException {
    return env(app, dir, "[{name: tag, path: /tags}, {name: n, path: /n, kind: number}, {name: city, path: /address/city}]");
  }

  /** The same with the indexes given (a YAML list), and no workers. */
  static Map<String, String> env(String app, Path dir, String indexes) throws IOException {
    ObjectMapper yaml = new ObjectMapper(new YAMLFactory());
    ObjectNode conf = (ObjectNode) yaml.readTree(Path.of("conf", "kfold.yaml").toFile());
    conf.set("types", yaml.readTree("[{name: items, fold: merge, indexes: " + indexes + "}]"));
    conf.putObject("effects");
    conf.putArray("views");  // the shipped views read types this node does not have
    Path file = dir.resolve("kfold-test.yaml");
    Files.createDirectories(dir);
    yaml.writeValue(file.toFile(), conf);
    Map<String, String> env = new HashMap<>(TestNodes.env(app, dir));
    env.put("KFOLD_CONFIG", file.toString());
    return env;
  }

  /** Keys of the entities the history writes to, whether written yet or not. */
  List<String> allKeys() {
    List<String> all = new ArrayList<>();
    for (int k = 0; k < keys; k++) {
      all.add("k" + k);
    }
    return all;
  }

  int events() {
    return events;
  }

  /** Per events partition, the offset after the last event written (of the records {@link #sent} was told of). */
  Map<Integer, Long> written() {
    return written;
  }

  /**
   * The next random patch, already folded into the model: set, change or remove (null) the tags
   * (an array, duplicates too), n (a decimal, negatives too) or the nested city.
   */
  ProducerRecord<byte[], byte[]> nextPatch(String topic) {
    String key = "k" + random.nextInt(keys);
    ObjectNode patch = JsonNodeFactory.instance.objectNode();
    switch (random.nextInt(3)) {
      case 0 -> {
        if (random.nextInt(5) == 0) {
          patch.putNull("tags");
        } else {
          var tags = patch.putArray("tags");
          for (int t = random.nextInt(4); t > 0; t--) {
            tags.add(TAGS[random.nextInt(TAGS.length)]);
          }
        }
      }
      case 1 -> {
        if (random.nextInt(5) == 0) {
          patch.putNull("n");
        } else {
          patch.put("n", BigDecimal.valueOf(random.nextInt(2001) - 1000, random.nextInt(3)));
        }
      }
      default -> {
        int choice = random.nextInt(6);
        if (choice == 0) {
          patch.putNull("address");
        } else if (choice == 1) {
          patch.putObject("address").putNull("city");
        } else {
          patch.putObject("address").put("city", CITIES[random.nextInt(CITIES.length)]);
        }
      }
    }
    patch.put("i", events++);
    mergeInto(model.computeIfAbsent(key, k -> JsonNodeFactory.instance.objectNode()), patch);
    return new ProducerRecord<>(topic, key.getBytes(StandardCharsets.UTF_8), Envelopes.toBytes(patch));
  }

  /** Notes a record written: the node has folded everything once its partitions' offsets pass {@link #written}. */
  void sent(RecordMetadata metadata) {
    written.merge(metadata.partition(), metadata.offset() + 1, Math::max);
  }

  /** RFC 7396, written again here so that the test does not check the fold against itself. */
  private static void mergeInto(ObjectNode target, ObjectNode patch) {
    patch.fields().forEachRemaining(member -> {
      if (member.getValue().isNull()) {
        target.remove(member.getKey());
      } else if (member.getValue().isObject()) {
        JsonNode existing = target.get(member.getKey());
        ObjectNode child = existing instanceof ObjectNode o ? o : target.putObject(member.getKey());
        mergeInto(child, (ObjectNode) member.getValue());
      } else {
        target.set(member.getKey(), member.getValue().deepCopy());
      }
    });
  }

  /** The store's states are the model's, and its indexes hold exactly their values. */
  void checkStore(EntityStore store, String when) {
    // The store's states are the model's: then "a filter over all states" is a filter over the model.
    List<IndexScan.Entry> all = scan(store, EntityStore.ALL_ENTITIES, true);
    assertThat(all).extracting(IndexScan.Entry::key).as("every entity, in key order, %s", when)
        .containsExactlyElementsOf(model.keySet());
    for (IndexScan.Entry entry : all) {
      assertThat(parse(entry.entity().state())).as("state of %s %s", entry.key(), when)
          .isEqualTo(parse(Envelopes.toBytes(model.get(entry.key()))));
    }
    checkEntries(store, model, when);
  }

  /**
   * The store's indexes hold exactly the values of the states it holds, whatever they are: what
   * must be true at any point a node stops, even mid-history, if entries are written with their
   * states. Reads each state by key, not by the entity list, which is itself one of the indexes.
   */
  void checkEntriesMatchStates(EntityStore store, String when) {
    List<String> all = allKeys();
    List<StoredEntity> stored = store.getAll(TYPE, all);
    Map<String, JsonNode> states = new TreeMap<>();
    for (int i = 0; i < all.size(); i++) {
      if (stored.get(i) != null) {
        states.put(all.get(i), parse(stored.get(i).state()));
      }
    }
    assertThat(scan(store, EntityStore.ALL_ENTITIES, false)).extracting(IndexScan.Entry::key)
        .as("every entity, in key order, %s", when).containsExactlyElementsOf(states.keySet());
    checkEntries(store, states, when);
  }

  /** Each index holds exactly one entry per distinct value of each entity: none stale, none missing. */
  private static void checkEntries(EntityStore store, Map<String, ? extends JsonNode> states, String when) {
    assertThat(entries(store, "tag")).as("tag entries %s", when).containsExactlyElementsOf(expectedEntries(states, s -> {
      List<String> tags = new ArrayList<>();
      s.path("tags").forEach(t -> tags.add(t.asText()));
      return tags;
    }));
    assertThat(entries(store, "city")).as("city entries %s", when).containsExactlyElementsOf(expectedEntries(states, s ->
        s.path("address").path("city").isTextual() ? List.of(s.path("address").path("city").asText()) : List.of()));
    assertThat(scan(store, "n", false)).extracting(IndexScan.Entry::key).as("n entries %s", when)
        .containsExactlyInAnyOrderElementsOf(states.entrySet().stream().filter(e -> e.getValue().path("n").isNumber())
            .map(Map.Entry::getKey).toList());
  }

  /**
   * Every query (equalities, AND, number ranges, a range over the array, all entities) walked page
   * by page at each size, with and without {@code fields=key}, equals the model's filter, in order.
   */
  void checkQueries(Pages pages, String when, int... sizes) throws Exception {
    for (String tag : TAGS) {
      checkQuery(pages, when, sizes, Map.of("tag", tag), keysWhere(s -> hasTag(s, tag)));
    }
    for (String city : CITIES) {
      checkQuery(pages, when, sizes, Map.of("city", city),
          keysWhere(s -> city.equals(s.path("address").path("city").asText(null))));
      checkQuery(pages, when, sizes, Map.of("city", city, "tag", "a"),
          keysWhere(s -> hasTag(s, "a") && city.equals(s.path("address").path("city").asText(null))));
    }
    checkQuery(pages, when, sizes, Map.of(), new ArrayList<>(model.keySet()));
    for (int round = 0; round < 5; round++) {
      BigDecimal from = BigDecimal.valueOf(random.nextInt(2001) - 1000, random.nextInt(3));
      BigDecimal to = from.add(BigDecimal.valueOf(random.nextInt(500)));
      checkQuery(pages, when, sizes, Map.of("n.from", from.toPlainString(), "n.to", to.toPlainString()),
          ordered(s -> s.path("n").isNumber() && s.path("n").decimalValue().compareTo(from) >= 0
              && s.path("n").decimalValue().compareTo(to) < 0 ? List.of(s.path("n").decimalValue()) : List.of(),
              BigDecimal::compareTo));
    }
    // A range over an array: an entity with several tags in it is answered once, at the first.
    checkQuery(pages, when, sizes, Map.of("tag.from", "b", "tag.to", "d"), ordered(s -> {
      List<String> inRange = new ArrayList<>();
      s.path("tags").forEach(t -> {
        if (t.asText().compareTo("b") >= 0 && t.asText().compareTo("d") < 0) {
          inRange.add(t.asText());
        }
      });
      return inRange.stream().sorted().limit(1).toList();
    }, String::compareTo));
    checkQuery(pages, when, sizes, Map.of("n.from", "0", "city", "Oslo"), keysWhere(s -> s.path("n").isNumber()
        && s.path("n").decimalValue().signum() >= 0 && "Oslo".equals(s.path("address").path("city").asText(null))));
  }

  /** Walks every page of the query at each page size: the pages, put together, are exactly {@code expected}. */
  private static void checkQuery(Pages pages, String when, int[] sizes, Map<String, String> conditions,
                                 List<String> expected) throws Exception {
    for (int limit : sizes) {
      for (boolean keysOnly : new boolean[] {false, true}) {
        List<String> walked = new ArrayList<>();
        String after = null;
        int count = 0;
        do {
          Page page = pages.page(conditions, limit, keysOnly, after);
          assertThat(page.keys().size()).isLessThanOrEqualTo(limit);
          walked.addAll(page.keys());
          after = page.next();
          assertThat(++count).as("pages of %s", conditions).isLessThanOrEqualTo(expected.size() + 1);
        } while (after != null);
        assertThat(walked).as("%s at page size %d%s, %s", conditions, limit, keysOnly ? ", keys only" : "", when)
            .containsExactlyElementsOf(expected);
      }
    }
  }

  /** Pages read from a store by the local query engine, over all its partitions. */
  static Pages local(EntityStore store) {
    LocalQueries queries = new LocalQueries(store);
    return (conditions, limit, keysOnly, after) -> {
      Map<String, List<String>> parameters = new LinkedHashMap<>();
      conditions.forEach((name, value) -> parameters.put(name, List.of(value)));
      parameters.put("limit", List.of(Integer.toString(limit)));
      if (keysOnly) {
        parameters.put("fields", List.of("key"));
      }
      if (after != null) {
        parameters.put("after", List.of(after));
      }
      LocalQueries.Page page = queries.run(Query.parse(TYPE, IndexFoldTestTypes.INDEXES, parameters), k -> true);
      return new Page(page.items().stream().map(LocalQueries.Item::key).toList(), page.next());
    };
  }

  /** Pages answered by {@code GET /v1/items} of the node listening on {@code port}. */
  static Pages http(HttpClient client, int port) {
    return (conditions, limit, keysOnly, after) -> {
      StringBuilder path = new StringBuilder("/v1/" + TYPE + "?limit=" + limit);
      conditions.forEach((name, value) -> path.append('&').append(name).append('=')
          .append(URLEncoder.encode(value, StandardCharsets.UTF_8)));
      if (keysOnly) {
        path.append("&fields=key");
      }
      if (after != null) {
        path.append("&after=").append(URLEncoder.encode(after, StandardCharsets.UTF_8));
      }
      HttpResponse<String> response = client.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
          .build(), HttpResponse.BodyHandlers.ofString());
      assertThat(response.statusCode()).as("%s: %s", path, response.body()).isEqualTo(200);
      JsonNode body = parse(response.body().getBytes(StandardCharsets.UTF_8));
      List<String> keys = new ArrayList<>();
      for (JsonNode item : body.path("items")) {
        keys.add(item.path("key").asText());
        assertThat(item.has("state")).as("%s: state of %s", path, item).isEqualTo(!keysOnly);
      }
      return new Page(keys, body.path("next").isNull() ? null : body.path("next").asText());
    };
  }

  private static boolean hasTag(JsonNode state, String tag) {
    for (JsonNode t : state.path("tags")) {
      if (t.asText().equals(tag)) {
        return true;
      }
    }
    return false;
  }

  /** Keys of the entities whose state passes, in key (UTF-8 byte) order: an equality's order. */
  private List<String> keysWhere(Predicate<JsonNode> test) {
    return model.entrySet().stream().filter(e -> test.test(e.getValue())).map(Map.Entry::getKey)
        .sorted(Comparator.comparing(k -> k.getBytes(StandardCharsets.UTF_8), Arrays::compareUnsigned)).toList();
  }

  /** Keys ordered by their value (at most one per entity), then by key: a range's order. */
  private <V> List<String> ordered(Function<JsonNode, List<V>> value, Comparator<V> order) {
    record Hit<V>(V value, String key) {}
    List<Hit<V>> hits = new ArrayList<>();
    model.forEach((key, state) -> value.apply(state).forEach(v -> hits.add(new Hit<>(v, key))));
    hits.sort(Comparator.<Hit<V>, V>comparing(Hit::value, order)
        .thenComparing(h -> h.key().getBytes(StandardCharsets.UTF_8), Arrays::compareUnsigned));
    return hits.stream().map(Hit::key).toList();
  }

  /** "value/key" of every entry the states should give a string index, in the index's order. */
  private static List<String> expectedEntries(Map<String, ? extends JsonNode> states,
                                              Function<JsonNode, List<String>> values) {
    List<String[]> entries = new ArrayList<>();
    states.forEach((key, state) -> values.apply(state).stream().distinct().forEach(v -> entries.add(new String[] {v, key})));
    entries.sort(Comparator.<String[], byte[]>comparing(e -> e[0].getBytes(StandardCharsets.UTF_8), Arrays::compareUnsigned)
        .thenComparing(e -> e[1].getBytes(StandardCharsets.UTF_8), Arrays::compareUnsigned));
    return entries.stream().map(e -> e[0] + "/" + e[1]).toList();
  }

  private static List<String> entries(EntityStore store, String index) {
    return scan(store, index, false).stream()
        .map(e -> new String(e.value(), StandardCharsets.UTF_8) + "/" + e.key()).toList();
  }

  private static List<IndexScan.Entry> scan(EntityStore store, String index, boolean withStates) {
    return store.scanIndex(new IndexScan(TYPE, index, null, null, null, Integer.MAX_VALUE, withStates));
  }

  private static JsonNode parse(byte[] json) {
    try {
      return Envelopes.parse(json);
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }
}
