package io.kfold.query;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.InterceptedStore;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.kfold.types.Envelopes;
import io.kfold.store.EntityStore;
import io.kfold.store.IndexBuild;
import io.kfold.store.IndexScan;
import io.kfold.store.RocksEntityStore;
import io.kfold.store.StoreBatch;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.WebClient;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Function;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Index changes on a real broker and a real RocksDB store of 20,000 entities: a store written before
 * indexes existed gets its entries and its list of all entities built from the states, and so does an
 * added index, while the fold goes on (queries of them answer 503 with the build's progress meanwhile,
 * and entities written during the build end with exact entries); a changed path drops the old entries
 * and builds the new ones; a removed index loses its entries. The build is held between chunks by a
 * gate in the store, so that "during the build" does not depend on timing.
 */
@ExtendWith(TestBroker.class)
class IndexBuildTest {

  private static final int ENTITIES = 20_000;
  private static final String[] TAGS = {"a", "b", "c", "d", "e"};
  private static final String[] CITIES = {"Oslo", "Lima", "Pune", "Åre"};
  private static final String[] LABELS = {"x", "y", "z"};

  private final Random random = new Random(13);
  /** The test's own fold of what it wrote: key → state. Keys of one length sort as the store walks them. */
  private final Map<String, ObjectNode> model = new TreeMap<>(Comparator.comparing(
      (String key) -> key.getBytes(StandardCharsets.UTF_8), Arrays::compareUnsigned));
  /** Per events partition, the offset after the last event written. */
  private final Map<Integer, Long> written = new HashMap<>();

  @Test
  @DisplayName("a store without entries, an added index and a changed path are built from the states while the fold goes on"
      + " (503 with progress meanwhile, exact after, also for entities written during the build); a removed index loses its entries")
  void indexChangesAreBuiltFromTheStates() throws Exception {
    String app = TestNodes.newApp("builds");
    Path dir = TestNodes.tempDir("builds");
    Vertx vertx = Vertx.vertx();
    WebClient client = WebClient.create(vertx);
    Gate gate = new Gate();
    try (KafkaProducer<byte[], byte[]> producer = TestNodes.plainProducer()) {
      // A store written with one index, then stripped of every entry and build record: as a store
      // written before indexes existed.
      NodeConfig v1 = config(app, dir, "[{name: tag, path: /tag}]");
      NodeRuntime node = TestNodes.startCaughtUp(vertx, v1);
      for (int i = 0; i < ENTITIES; i++) {
        ObjectNode state = JsonNodeFactory.instance.objectNode()
            .put("tag", TAGS[random.nextInt(TAGS.length)]).put("label", LABELS[random.nextInt(LABELS.length)]);
        state.putObject("address").put("city", CITIES[random.nextInt(CITIES.length)]);
        put(String.format("e%05d", i), state);
      }
      send(producer, v1);
      awaitFolded(node, v1);
      node.stop().await(60, TimeUnit.SECONDS);
      Path storeDir = v1.dataDir().resolve("store");
      try (RocksEntityStore store = new RocksEntityStore(storeDir)) {
        store.write(new StoreBatch().deleteIndex("items", EntityStore.ALL_ENTITIES).deleteIndex("items", "tag"));
        assertThat(scan(store, EntityStore.ALL_ENTITIES)).as("the list after stripping the store").isEmpty();
        assertThat(store.indexBuilds()).as("build records after stripping the store").isEmpty();
      }

      // The stripped store, with an added index: every index of items is built; the gate lets one chunk through.
      NodeConfig v2 = config(app, dir, "[{name: tag, path: /tag}, {name: city, path: /address/city}]");
      gate.allow(1);
      node = start(vertx, v2, gate);
      NodeRuntime building = node;
      // One chunk indexes every index of the type: when these two have it, the list has it too.
      await("the first chunk of the builds", () -> builtSoFar(building, "tag") == IndexBuilds.CHUNK
          && builtSoFar(building, "city") == IndexBuilds.CHUNK);
      Reply city = get(client, node, "city=Oslo");
      assertThat(city.status()).as("a query of the city index while it is built: %s", city.body()).isEqualTo(503);
      assertThat(city.contentType()).isEqualTo("application/problem+json");
      assertThat(city.body().path("detail").asText()).isEqualTo("index 'city' of items is being built: 1000 entities"
          + " indexed, of 20000 when the build began; retry later");
      assertThat(city.body().path("indexBuilt").asLong()).isEqualTo(1000);
      assertThat(city.body().path("indexEntities").asLong()).isEqualTo(ENTITIES);
      Reply all = get(client, node, "limit=5");
      assertThat(all.status()).as("the list of all items while it is built: %s", all.body()).isEqualTo(503);
      assertThat(all.body().path("detail").asText()).startsWith("the list of all items is being built: 1000 entities");

      // Written during the build: changes to entities the build has passed (the first chunk) and to
      // others, removals, and new entities on both sides of where the build stands.
      for (int i = 0; i < ENTITIES; i += 7) {
        ObjectNode patch = JsonNodeFactory.instance.objectNode();
        if (i % 5 == 0) {
          patch.putObject("address").putNull("city");
        } else {
          patch.putObject("address").put("city", CITIES[random.nextInt(CITIES.length)]);
        }
        patch.put("tag", TAGS[random.nextInt(TAGS.length)]);
        patch(String.format("e%05d", i), patch);
      }
      for (int i = 0; i < 300; i++) {
        ObjectNode state = JsonNodeFactory.instance.objectNode().put("tag", "a").put("label", "x");
        state.putObject("address").put("city", "Oslo");
        put(String.format("f%04d", i), state);  // shorter keys: before where the build stands
        put(String.format("g%06d", i), state.deepCopy());  // longer keys: after it
      }
      send(producer, v2);
      awaitFolded(node, v2);
      assertThat(node.store().indexBuild("items", "city").ready()).as("the build, held by the gate").isFalse();
      gate.open();
      await("every build ready", () -> ready(building, EntityStore.ALL_ENTITIES) && ready(building, "tag")
          && ready(building, "city"));
      checkIndex(node.store(), "tag", s -> List.of(s.path("tag").asText()), "after a build from a store without entries");
      checkIndex(node.store(), "city", IndexBuildTest::cityOf, "after the city index was added");
      checkQuery(client, node, "city=Oslo", keysWhere(s -> cityOf(s).contains("Oslo")));
      checkQuery(client, node, "tag=c", keysWhere(s -> s.path("tag").asText().equals("c")));
      checkQuery(client, node, "", new ArrayList<>(model.keySet()));
      node.stop().await(60, TimeUnit.SECONDS);

      // The tag index now follows another path, and the city index is gone.
      NodeConfig v3 = config(app, dir, "[{name: tag, path: /label}]");
      Gate held = new Gate();
      try {
        node = start(vertx, v3, held);
        assertThat(scan(node.store(), "tag")).as("tag entries of the old path once the path changed").isEmpty();
        assertThat(scan(node.store(), "city")).as("entries of the removed city index").isEmpty();
        assertThat(node.store().indexBuild("items", "city")).as("the build record of the removed city index").isNull();
        Reply tag = get(client, node, "tag=x");
        assertThat(tag.status()).as("a query of the changed tag index while it is built: %s", tag.body()).isEqualTo(503);
        assertThat(tag.body().path("detail").asText()).startsWith("index 'tag' of items is being built: 0 entities indexed,"
            + " of " + model.size());
        Reply removed = get(client, node, "city=Oslo");
        assertThat(removed.status()).as("a query of the removed index: %s", removed.body()).isEqualTo(400);
        assertThat(removed.body().path("detail").asText()).startsWith("'city' names no index of items");
        assertThat(get(client, node, "limit=1").status()).as("the list of all items, built before").isEqualTo(200);
      } finally {
        held.open();
      }
      NodeRuntime rebuilt = node;
      await("the tag index built again", () -> ready(rebuilt, "tag"));
      checkIndex(node.store(), "tag", s -> List.of(s.path("label").asText()), "after the tag path changed");
      checkQuery(client, node, "tag=y", keysWhere(s -> s.path("label").asText().equals("y")));
      node.stop().await(60, TimeUnit.SECONDS);
    } finally {
      gate.open();
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  /**
   * Holds the index builds of a node before each chunk: a chunk passes only with a permit. Closed
   * at first; a permit is taken for each chunk; {@link #open} lets every chunk through.
   */
  private static final class Gate {
    private final Semaphore permits = new Semaphore(0);

    void allow(int chunks) {
      permits.release(chunks);
    }

    void open() {
      permits.release(Integer.MAX_VALUE / 2);
    }

    void pass() {
      try {
        if (!permits.tryAcquire(120, TimeUnit.SECONDS)) {
          throw new IllegalStateException("the test's gate held an index build for 120 s");
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException(e);
      }
    }
  }

  private static NodeRuntime start(Vertx vertx, NodeConfig config, Gate gate) throws Exception {
    NodeRuntime node = NodeRuntime.start(vertx, config,
        NodeRuntime.Options.DEFAULTS.withStore(store -> new InterceptedStore(store, batch -> { }, gate::pass)))
        .await(60, TimeUnit.SECONDS);
    TestNodes.awaitCaughtUp(node);
    return node;
  }

  /** One type, "items", a merge type with the given indexes. */
  private static NodeConfig config(String app, Path dir, String indexes) throws Exception {
    return NodeConfig.load(IndexModel.env(app, dir, indexes));
  }

  private final List<ProducerRecord<byte[], byte[]>> toSend = new ArrayList<>();

  /** A new entity's state (its first patch). */
  private void put(String key, ObjectNode state) {
    model.put(key, state.deepCopy());
    toSend.add(new ProducerRecord<>("", key.getBytes(StandardCharsets.UTF_8), Envelopes.toBytes(state)));
  }

  /** A merge patch: members set, or removed by null, one level down at most. */
  private void patch(String key, ObjectNode patch) {
    ObjectNode state = model.get(key);
    patch.fields().forEachRemaining(member -> {
      if (member.getValue().isObject()) {
        ObjectNode child = (ObjectNode) state.get(member.getKey());
        member.getValue().fields().forEachRemaining(inner -> {
          if (inner.getValue().isNull()) {
            child.remove(inner.getKey());
          } else {
            child.set(inner.getKey(), inner.getValue());
          }
        });
      } else {
        state.set(member.getKey(), member.getValue());
      }
    });
    toSend.add(new ProducerRecord<>("", key.getBytes(StandardCharsets.UTF_8), Envelopes.toBytes(patch)));
  }

  /** Sends what put and patch gathered, from an outside producer, and notes where each partition ends. */
  private void send(KafkaProducer<byte[], byte[]> producer, NodeConfig config) throws Exception {
    List<Future<RecordMetadata>> sent = new ArrayList<>();
    for (ProducerRecord<byte[], byte[]> record : toSend) {
      sent.add(producer.send(new ProducerRecord<>(config.eventsTopic("items"), record.key(), record.value())));
    }
    toSend.clear();
    producer.flush();
    for (Future<RecordMetadata> one : sent) {
      RecordMetadata metadata = one.get(30, TimeUnit.SECONDS);
      written.merge(metadata.partition(), metadata.offset() + 1, Math::max);
    }
  }

  /** Waits until the node's store has folded every event written (the store's offsets, no sleep as evidence). */
  private void awaitFolded(NodeRuntime node, NodeConfig config) throws InterruptedException {
    await("every event folded", () -> written.entrySet().stream().allMatch(partition ->
        node.store().nextOffset(config.eventsTopic("items"), partition.getKey()).orElse(0) >= partition.getValue()));
  }

  private static void await(String what, BooleanSupplier condition) throws InterruptedException {
    long deadline = System.currentTimeMillis() + 60_000;
    while (!condition.getAsBoolean()) {
      if (System.currentTimeMillis() > deadline) {
        throw new AssertionError("not within 60 s: " + what);
      }
      Thread.sleep(20);
    }
  }

  private static long builtSoFar(NodeRuntime node, String index) {
    IndexBuild build = node.store().indexBuild("items", index);
    return build == null ? -1 : build.built();
  }

  private static boolean ready(NodeRuntime node, String index) {
    IndexBuild build = node.store().indexBuild("items", index);
    return build != null && build.ready();
  }

  private static List<String> cityOf(JsonNode state) {
    JsonNode city = state.path("address").path("city");
    return city.isTextual() ? List.of(city.asText()) : List.of();
  }

  /** The index holds exactly one entry per value of each entity, as a filter of the model's states gives: none stale, none missing. */
  private void checkIndex(EntityStore store, String index, Function<JsonNode, List<String>> values, String when) {
    List<String[]> expected = new ArrayList<>();
    model.forEach((key, state) -> values.apply(state).forEach(value -> expected.add(new String[] {value, key})));
    expected.sort(Comparator.<String[], byte[]>comparing(e -> e[0].getBytes(StandardCharsets.UTF_8), Arrays::compareUnsigned)
        .thenComparing(e -> e[1].getBytes(StandardCharsets.UTF_8), Arrays::compareUnsigned));
    assertThat(scan(store, index)).as("%s entries %s", index, when)
        .containsExactlyElementsOf(expected.stream().map(e -> e[0] + "/" + e[1]).toList());
    assertThat(scan(store, EntityStore.ALL_ENTITIES)).as("the list of all items %s", when)
        .containsExactlyElementsOf(model.keySet().stream().map(key -> "/" + key).toList());
  }

  /** "value/key" of every entry of an index, in the store's order. */
  private static List<String> scan(EntityStore store, String index) {
    return store.scanIndex(new IndexScan("items", index, null, null, null, Integer.MAX_VALUE, false)).stream()
        .map(e -> new String(e.value(), StandardCharsets.UTF_8) + "/" + e.key()).toList();
  }

  /** Keys of the entities whose state passes, in key order: an equality's order. */
  private List<String> keysWhere(java.util.function.Predicate<JsonNode> test) {
    return model.entrySet().stream().filter(e -> test.test(e.getValue())).map(Map.Entry::getKey).toList();
  }

  /** Walks every page of the query through HTTP, 1000 at a time: together they are exactly {@code expected}, states included. */
  private void checkQuery(WebClient client, NodeRuntime node, String query, List<String> expected) throws Exception {
    List<String> walked = new ArrayList<>();
    String after = null;
    do {
      Reply page = get(client, node, query + (query.isEmpty() ? "" : "&") + "limit=1000"
          + (after == null ? "" : "&after=" + URLEncoder.encode(after, StandardCharsets.UTF_8)));
      assertThat(page.status()).as("a page of '%s': %s", query, page.body()).isEqualTo(200);
      for (JsonNode item : page.body().path("items")) {
        String key = item.path("key").asText();
        walked.add(key);
        assertThat(item.path("state")).as("state of %s", key).isEqualTo(model.get(key));
      }
      after = page.body().path("next").isTextual() ? page.body().path("next").asText() : null;
    } while (after != null && walked.size() <= expected.size());
    assertThat(walked).as("pages of '%s'", query).containsExactlyElementsOf(expected);
  }

  private static Reply get(WebClient client, NodeRuntime node, String query) throws Exception {
    return TestNodes.call(client, HttpMethod.GET, node.httpPort(), "/v1/items?" + query, null, Map.of());
  }
}
