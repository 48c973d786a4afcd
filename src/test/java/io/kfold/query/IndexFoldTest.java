package io.kfold.query;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.kfold.KfoldConfig;
import io.kfold.KfoldNode;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.entity.Envelopes;
import io.kfold.store.EntityStore;
import io.kfold.store.IndexScan;
import io.vertx.core.Vertx;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.math.BigDecimal;
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
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Index entries against a real broker and a real RocksDB store: after a random history (values
 * that change, members removed by merge-patch null, arrays), every index holds exactly the values
 * the states hold, and every query answers what a filter over all states answers, page by page;
 * after a restart on the same store, and after a restore from the changelog on an empty node.
 */
@ExtendWith(TestBroker.class)
class IndexFoldTest {

  private static final int KEYS = 300;
  private static final String[] TAGS = {"a", "b", "c", "d", "e"};
  private static final String[] CITIES = {"Oslo", "Lima", "Pune", "Åre"};

  private final Random random = new Random(13);
  /** The test's own fold of what it wrote: key → state, as plain JSON. */
  private final Map<String, ObjectNode> model = new TreeMap<>();
  /** Per events partition, the offset after the last event written. */
  private final Map<Integer, Long> written = new HashMap<>();

  @Test
  @DisplayName("indexes equal a filter over all states after a random history, a restart, and a restore on an empty node;"
      + " every page walk at sizes 1, 7 and 1000 returns each match once")
  void indexesFollowStates() throws Exception {
    String app = TestNodes.newApp("index");
    Path firstDir = TestNodes.tempDir("index-a");
    Vertx vertx = Vertx.vertx();
    try (KafkaProducer<byte[], byte[]> producer = TestNodes.plainProducer()) {
      KfoldConfig first = config(app, firstDir);
      KfoldNode node = TestNodes.startCaughtUp(vertx, first);
      writeRandomHistory(producer, first, 2500);
      awaitFolded(node, first);
      checkIndexes(node.store(), "after the first half");
      node.stop().await(60, TimeUnit.SECONDS);

      writeRandomHistory(producer, first, 2500);
      node = TestNodes.startCaughtUp(vertx, first);
      awaitFolded(node, first);
      checkIndexes(node.store(), "after a restart on the same store");
      node.stop().await(60, TimeUnit.SECONDS);

      KfoldConfig fresh = config(app, TestNodes.tempDir("index-b"));
      node = TestNodes.startCaughtUp(vertx, fresh);
      awaitFolded(node, fresh);
      checkIndexes(node.store(), "after a restore on an empty node");
      node.stop().await(60, TimeUnit.SECONDS);
    } finally {
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  /** One type, "items", with a string index on an array, a number index, and a string index on a nested member. */
  private static KfoldConfig config(String app, Path dir) throws Exception {
    ObjectMapper yaml = new ObjectMapper(new YAMLFactory());
    ObjectNode conf = (ObjectNode) yaml.readTree(Path.of("conf", "kfold.yaml").toFile());
    conf.set("types", yaml.readTree("""
        - name: items
          fold: merge
          indexes:
            - {name: tag, path: /tags}
            - {name: n, path: /n, kind: number}
            - {name: city, path: /address/city}
        """));
    conf.putObject("effects");
    Path file = dir.resolve("kfold-test.yaml");
    Files.createDirectories(dir);
    yaml.writeValue(file.toFile(), conf);
    Map<String, String> env = new HashMap<>(TestNodes.env(app, dir));
    env.put("KFOLD_CONFIG", file.toString());
    return KfoldConfig.load(env);
  }

  /** Patches from an outside producer: set, change or remove (null) tags, n and the city, at random. */
  private void writeRandomHistory(KafkaProducer<byte[], byte[]> producer, KfoldConfig config, int events) throws Exception {
    List<Future<RecordMetadata>> sent = new ArrayList<>();
    for (int i = 0; i < events; i++) {
      String key = "k" + random.nextInt(KEYS);
      ObjectNode patch = JsonNodeFactory.instance.objectNode();
      switch (random.nextInt(3)) {
        case 0 -> {
          if (random.nextInt(5) == 0) {
            patch.putNull("tags");
          } else {
            var tags = patch.putArray("tags");
            for (int t = random.nextInt(4); t > 0; t--) {
              tags.add(TAGS[random.nextInt(TAGS.length)]);  // duplicates too
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
      patch.put("i", i);
      mergeInto(model.computeIfAbsent(key, k -> JsonNodeFactory.instance.objectNode()), patch);
      sent.add(producer.send(new ProducerRecord<>(config.eventsTopic("items"), key.getBytes(StandardCharsets.UTF_8),
          Envelopes.toBytes(patch))));
    }
    producer.flush();
    for (Future<RecordMetadata> one : sent) {
      RecordMetadata metadata = one.get(30, TimeUnit.SECONDS);
      written.merge(metadata.partition(), metadata.offset() + 1, Math::max);
    }
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

  /** Waits until the node's store has folded every event written (a sentinel per partition, no sleep as evidence). */
  private void awaitFolded(KfoldNode node, KfoldConfig config) throws InterruptedException {
    long deadline = System.currentTimeMillis() + 60_000;
    for (Map.Entry<Integer, Long> partition : written.entrySet()) {
      while (node.store().nextOffset(config.eventsTopic("items"), partition.getKey()).orElse(0) < partition.getValue()) {
        if (System.currentTimeMillis() > deadline) {
          throw new AssertionError("partition " + partition.getKey() + " not folded to " + partition.getValue());
        }
        Thread.sleep(20);
      }
    }
  }

  private void checkIndexes(EntityStore store, String when) {
    // The store's states are the model's: then "a filter over all states" is a filter over the model.
    List<IndexScan.Entry> all = scan(store, EntityStore.ALL_ENTITIES, true);
    assertThat(all).extracting(IndexScan.Entry::key).as("every entity, in key order, %s", when)
        .containsExactlyElementsOf(model.keySet());
    for (IndexScan.Entry entry : all) {
      assertThat(parse(entry.entity().state())).as("state of %s %s", entry.key(), when)
          .isEqualTo(parse(Envelopes.toBytes(model.get(entry.key()))));
    }

    // Each string index holds exactly one entry per distinct value of each entity: none stale, none missing.
    assertThat(entries(store, "tag")).as("tag entries %s", when).containsExactlyElementsOf(expectedEntries(s -> {
      List<String> tags = new ArrayList<>();
      s.path("tags").forEach(t -> tags.add(t.asText()));
      return tags;
    }));
    assertThat(entries(store, "city")).as("city entries %s", when).containsExactlyElementsOf(expectedEntries(s ->
        s.path("address").path("city").isTextual() ? List.of(s.path("address").path("city").asText()) : List.of()));
    assertThat(scan(store, "n", false)).extracting(IndexScan.Entry::key).as("n entries %s", when)
        .containsExactlyInAnyOrderElementsOf(model.entrySet().stream().filter(e -> e.getValue().path("n").isNumber())
            .map(Map.Entry::getKey).toList());

    LocalQueries queries = new LocalQueries(store);
    for (String tag : TAGS) {
      checkQuery(queries, when, Map.of("tag", tag), keysWhere(s -> hasTag(s, tag)));
    }
    for (String city : CITIES) {
      checkQuery(queries, when, Map.of("city", city), keysWhere(s -> city.equals(s.path("address").path("city").asText(null))));
      checkQuery(queries, when, Map.of("city", city, "tag", "a"),
          keysWhere(s -> hasTag(s, "a") && city.equals(s.path("address").path("city").asText(null))));
    }
    checkQuery(queries, when, Map.of(), new ArrayList<>(model.keySet()));
    for (int round = 0; round < 5; round++) {
      BigDecimal from = BigDecimal.valueOf(random.nextInt(2001) - 1000, random.nextInt(3));
      BigDecimal to = from.add(BigDecimal.valueOf(random.nextInt(500)));
      checkQuery(queries, when, Map.of("n.from", from.toPlainString(), "n.to", to.toPlainString()),
          ordered(s -> s.path("n").isNumber() && s.path("n").decimalValue().compareTo(from) >= 0
              && s.path("n").decimalValue().compareTo(to) < 0 ? List.of(s.path("n").decimalValue()) : List.of(),
              BigDecimal::compareTo));
    }
    // A range over an array: an entity with several tags in it is answered once, at the first.
    checkQuery(queries, when, Map.of("tag.from", "b", "tag.to", "d"), ordered(s -> {
      List<String> inRange = new ArrayList<>();
      s.path("tags").forEach(t -> {
        if (t.asText().compareTo("b") >= 0 && t.asText().compareTo("d") < 0) {
          inRange.add(t.asText());
        }
      });
      return inRange.stream().sorted().limit(1).toList();
    }, String::compareTo));
    checkQuery(queries, when, Map.of("n.from", "0", "city", "Oslo"), keysWhere(s -> s.path("n").isNumber()
        && s.path("n").decimalValue().signum() >= 0 && "Oslo".equals(s.path("address").path("city").asText(null))));
  }

  /** Walks every page of the query at page sizes 1, 7 and 1000: the pages, put together, are exactly {@code expected}. */
  private static void checkQuery(LocalQueries queries, String when, Map<String, String> conditions, List<String> expected) {
    for (int limit : new int[] {1, 7, 1000}) {
      for (boolean keysOnly : new boolean[] {false, true}) {
        List<String> walked = new ArrayList<>();
        String after = null;
        int pages = 0;
        do {
          Map<String, List<String>> parameters = new LinkedHashMap<>();
          conditions.forEach((name, value) -> parameters.put(name, List.of(value)));
          parameters.put("limit", List.of(Integer.toString(limit)));
          if (keysOnly) {
            parameters.put("fields", List.of("key"));
          }
          if (after != null) {
            parameters.put("after", List.of(after));
          }
          LocalQueries.Page page = queries.run(Query.parse("items", IndexFoldTestTypes.INDEXES, parameters), k -> true);
          assertThat(page.items().size()).isLessThanOrEqualTo(limit);
          page.items().forEach(item -> walked.add(item.key()));
          after = page.next();
          assertThat(++pages).as("pages of %s", conditions).isLessThanOrEqualTo(expected.size() + 1);
        } while (after != null);
        assertThat(walked).as("%s at page size %d%s, %s", conditions, limit, keysOnly ? ", keys only" : "", when)
            .containsExactlyElementsOf(expected);
      }
    }
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
  private List<String> keysWhere(java.util.function.Predicate<JsonNode> test) {
    return model.entrySet().stream().filter(e -> test.test(e.getValue())).map(Map.Entry::getKey)
        .sorted(Comparator.comparing(k -> k.getBytes(StandardCharsets.UTF_8), Arrays::compareUnsigned)).toList();
  }

  /** Keys ordered by their value (at most one per entity), then by key: a range's order. */
  private <V> List<String> ordered(java.util.function.Function<JsonNode, List<V>> value, Comparator<V> order) {
    record Hit<V>(V value, String key) {}
    List<Hit<V>> hits = new ArrayList<>();
    model.forEach((key, state) -> value.apply(state).forEach(v -> hits.add(new Hit<>(v, key))));
    hits.sort(Comparator.<Hit<V>, V>comparing(Hit::value, order)
        .thenComparing(h -> h.key().getBytes(StandardCharsets.UTF_8), Arrays::compareUnsigned));
    return hits.stream().map(Hit::key).toList();
  }

  /** "value/key" of every entry the states should give a string index, in the index's order. */
  private List<String> expectedEntries(java.util.function.Function<JsonNode, List<String>> values) {
    List<String[]> entries = new ArrayList<>();
    model.forEach((key, state) -> values.apply(state).stream().distinct().forEach(v -> entries.add(new String[] {v, key})));
    entries.sort(Comparator.<String[], byte[]>comparing(e -> e[0].getBytes(StandardCharsets.UTF_8), Arrays::compareUnsigned)
        .thenComparing(e -> e[1].getBytes(StandardCharsets.UTF_8), Arrays::compareUnsigned));
    return entries.stream().map(e -> e[0] + "/" + e[1]).toList();
  }

  private static List<String> entries(EntityStore store, String index) {
    return scan(store, index, false).stream()
        .map(e -> new String(e.value(), StandardCharsets.UTF_8) + "/" + e.key()).toList();
  }

  private static List<IndexScan.Entry> scan(EntityStore store, String index, boolean withStates) {
    return store.scanIndex(new IndexScan("items", index, null, null, null, Integer.MAX_VALUE, withStates));
  }

  private static JsonNode parse(byte[] json) {
    try {
      return Envelopes.parse(json);
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }
}
