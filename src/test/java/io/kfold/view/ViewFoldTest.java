package io.kfold.view;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.kfold.InterceptedStore;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.types.Envelopes;
import io.kfold.store.StoredEntity;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.WebClient;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A view's pipeline against a real broker and a real RocksDB store: random merge patches from an
 * outside producer move "members" between groups, change and remove their numbers; the rows of the
 * test's view ({@link ViewFoldTestView}) always equal a recomputation from the final states, also
 * after two failed store writes (the fold reopens and publishes its outbox again), with copies of
 * applied contributions written to the view's topic by hand, after a restart on the same store and
 * after a restore on an empty node.
 */
@ExtendWith(TestBroker.class)
class ViewFoldTest {

  private static final String VIEW_TYPE = ViewType.typeName(ViewFoldTestView.NAME);
  /** The view's first version: this test asks for no rebuild. */
  private static final String VERSION = ViewVersion.of(new ViewFoldTestView(), 1).toString();
  private static final int KEYS = 200;
  private static final String[] GROUPS = {"g0", "g1", "g2", "g3", "g4", "g5", "g6", "g7"};

  private final Random random = new Random(14);
  /** The test's own fold of what it wrote: key → state. */
  private final Map<String, ObjectNode> model = new TreeMap<>();
  /** Per events partition, the offset after the last event written. */
  private final Map<Integer, Long> written = new HashMap<>();

  @Test
  @DisplayName("every row equals a recomputation from the final states: after failed writes, copies of applied"
      + " contributions, a restart on the same store, and a restore on an empty node")
  void rowsEqualTheStates() throws Exception {
    String app = TestNodes.newApp("view");
    Vertx vertx = Vertx.vertx();
    WebClient http = WebClient.create(vertx);
    AtomicInteger failures = new AtomicInteger();
    String members = TestNodes.config(app, TestNodes.tempDir("view-names")).eventsTopic(ViewFoldTestView.TYPE);
    // Two fold writes fail while the outbox of "members" holds what the poll before sent in the
    // open transaction: that transaction is aborted, so those contributions reach the view only
    // through the outbox, published again when the fold reopens.
    NodeRuntime.Options options = NodeRuntime.Options.DEFAULTS.withView(new ViewFoldTestView())
        .withStore(store -> new InterceptedStore(store, batch -> {
          boolean pending = false;
          for (int partition = 0; partition < 4; partition++) {
            pending |= !store.outboxByOffset(members, partition).isEmpty();
          }
          if (pending && failures.get() < 2) {
            throw new IllegalStateException("injected failure of store write " + failures.incrementAndGet());
          }
        }));
    try (KafkaProducer<byte[], byte[]> producer = TestNodes.plainProducer()) {
      NodeConfig config = NodeConfig.load(env(app, TestNodes.tempDir("view-a")));
      NodeRuntime node = start(vertx, config, options);
      for (int round = 0; round < 5; round++) {
        writeRandomPatches(producer, config, 400);
      }
      settleAndCheck(node, config, producer, http, "after two failed writes");
      assertThat(failures.get()).as("injected failures of store writes").isEqualTo(2);
      node.stop().await(60, TimeUnit.SECONDS);

      writeRandomPatches(producer, config, 1500);
      node = start(vertx, config, NodeRuntime.Options.DEFAULTS.withView(new ViewFoldTestView()));
      settleAndCheck(node, config, producer, http, "after a restart on the same store");
      node.stop().await(60, TimeUnit.SECONDS);

      NodeConfig fresh = NodeConfig.load(env(app, TestNodes.tempDir("view-b")));
      node = start(vertx, fresh, NodeRuntime.Options.DEFAULTS.withView(new ViewFoldTestView()));
      settleAndCheck(node, fresh, producer, http, "after a restore on an empty node");
      node.stop().await(60, TimeUnit.SECONDS);
    } finally {
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  private static NodeRuntime start(Vertx vertx, NodeConfig config, NodeRuntime.Options options) throws Exception {
    NodeRuntime node = NodeRuntime.start(vertx, config, options).await(60, TimeUnit.SECONDS);
    TestNodes.awaitCaughtUp(node);
    return node;
  }

  /** A node whose only type is the merge type "members", without workers. */
  static Map<String, String> env(String app, Path dir) throws Exception {
    ObjectMapper yaml = new ObjectMapper(new YAMLFactory());
    ObjectNode conf = (ObjectNode) yaml.readTree(Path.of("conf", "kfold.yaml").toFile());
    conf.set("types", yaml.readTree("[{name: members, fold: merge}]"));
    conf.putObject("effects");
    conf.putArray("views");  // the shipped views read types this node does not have
    Path file = dir.resolve("kfold-test.yaml");
    Files.createDirectories(dir);
    yaml.writeValue(file.toFile(), conf);
    Map<String, String> env = new HashMap<>(TestNodes.env(app, dir));
    env.put("KFOLD_CONFIG", file.toString());
    return env;
  }

  /** Random patches: a member joins, changes or leaves (null) a group, its n changes or goes, or both. */
  private void writeRandomPatches(KafkaProducer<byte[], byte[]> producer, NodeConfig config, int events)
      throws Exception {
    List<Future<RecordMetadata>> sent = new ArrayList<>();
    for (int i = 0; i < events; i++) {
      String key = "m" + random.nextInt(KEYS);
      ObjectNode patch = JsonNodeFactory.instance.objectNode();
      int choice = random.nextInt(10);
      if (choice < 4 || choice == 8) {
        if (random.nextInt(6) == 0) {
          patch.putNull("group");
        } else {
          patch.put("group", GROUPS[random.nextInt(GROUPS.length)]);
        }
      }
      if (choice >= 4) {
        if (random.nextInt(6) == 0) {
          patch.putNull("n");
        } else {
          patch.put("n", random.nextInt(101) - 50);
        }
      }
      if (choice == 9) {
        patch.putNull("group");
      }
      ObjectNode state = model.computeIfAbsent(key, k -> JsonNodeFactory.instance.objectNode());
      patch.fields().forEachRemaining(member -> {
        if (member.getValue().isNull()) {
          state.remove(member.getKey());
        } else {
          state.set(member.getKey(), member.getValue());
        }
      });
      sent.add(producer.send(new ProducerRecord<>(config.eventsTopic(ViewFoldTestView.TYPE),
          key.getBytes(StandardCharsets.UTF_8), Envelopes.toBytes(patch))));
    }
    producer.flush();
    for (Future<RecordMetadata> one : sent) {
      RecordMetadata metadata = one.get(30, TimeUnit.SECONDS);
      written.merge(metadata.partition(), metadata.offset() + 1, Math::max);
    }
  }

  /**
   * Waits until the node has folded every patch and every contribution, then checks the rows. The
   * last contributions of each partition of the view's topic are written again by hand first: they
   * are duplicates the view must skip, and once the view has folded past them, it has folded all
   * that came before.
   */
  private void settleAndCheck(NodeRuntime node, NodeConfig config, KafkaProducer<byte[], byte[]> producer,
                              WebClient http, String when) throws Exception {
    long deadline = System.currentTimeMillis() + 60_000;
    String events = config.eventsTopic(ViewFoldTestView.TYPE);
    for (Map.Entry<Integer, Long> partition : written.entrySet()) {
      while (node.store().nextOffset(events, partition.getKey()).orElse(0) < partition.getValue()) {
        assertThat(System.currentTimeMillis()).as(when + ": members partition " + partition.getKey() + " folded")
            .isLessThan(deadline);
        Thread.sleep(20);
      }
    }
    String contributions = config.eventsTopic(VIEW_TYPE);
    Map<Integer, Long> copies = writeCopiesOfContributions(producer, contributions, 5);
    for (Map.Entry<Integer, Long> partition : copies.entrySet()) {
      while (node.store().nextOffset(contributions, partition.getKey()).orElse(0) <= partition.getValue()) {
        assertThat(System.currentTimeMillis()).as(when + ": contributions partition " + partition.getKey()
            + " folded past the copies").isLessThan(deadline);
        Thread.sleep(20);
      }
    }
    // Contributions that a failed write left in the outbox are published again when the fold reopens,
    // in a transaction that may commit after the copies above were read: the rows are awaited.
    awaitRows(node, when, deadline);
    awaitLive(node, http, when);
    checkReads(node, http, when);
  }

  /**
   * Reads the view's topic as the view's fold does (committed records only), and writes again, as
   * an outside producer, the last {@code perPartition} contributions of each partition (a rewound
   * group); answers the offset of the last copy per partition (none for a partition without
   * contributions: then the rows' check says what is missing).
   */
  private static Map<Integer, Long> writeCopiesOfContributions(KafkaProducer<byte[], byte[]> producer, String topic,
                                                               int perPartition) throws Exception {
    Map<String, Object> conf = new HashMap<>();
    conf.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, TestBroker.bootstrap());
    conf.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    conf.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    Map<Integer, List<ConsumerRecord<byte[], byte[]>>> last = new TreeMap<>();
    try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(conf, new ByteArrayDeserializer(),
        new ByteArrayDeserializer())) {
      List<TopicPartition> partitions = consumer.partitionsFor(topic).stream()
          .map(info -> new TopicPartition(topic, info.partition())).toList();
      consumer.assign(partitions);
      consumer.seekToBeginning(partitions);
      Map<TopicPartition, Long> ends = consumer.endOffsets(partitions);
      long deadline = System.currentTimeMillis() + 30_000;
      while (partitions.stream().anyMatch(p -> consumer.position(p) < ends.get(p))) {
        assertThat(System.currentTimeMillis()).as("read " + topic + " to " + ends).isLessThan(deadline);
        for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofMillis(200))) {
          List<ConsumerRecord<byte[], byte[]>> kept = last.computeIfAbsent(record.partition(), p -> new ArrayList<>());
          kept.add(record);
          if (kept.size() > perPartition) {
            kept.remove(0);
          }
        }
      }
    }
    Map<Integer, Long> copies = new HashMap<>();
    List<Future<RecordMetadata>> sent = new ArrayList<>();
    last.forEach((partition, records) -> records.forEach(record ->
        sent.add(producer.send(new ProducerRecord<>(topic, partition, record.key(), record.value())))));
    producer.flush();
    for (Future<RecordMetadata> one : sent) {
      RecordMetadata metadata = one.get(30, TimeUnit.SECONDS);
      copies.merge(metadata.partition(), metadata.offset(), Math::max);
    }
    return copies;
  }

  /** The rows as the test's fold of the patches says they are: per group, [count, sum]. */
  private Map<String, long[]> oracle() {
    Map<String, long[]> rows = new TreeMap<>();
    model.values().forEach(state -> {
      if (state.has("group")) {
        long[] row = rows.computeIfAbsent(state.get("group").asText(), g -> new long[2]);
        row[0]++;
        row[1] += state.has("n") ? state.get("n").asLong() : 0;
      }
    });
    return rows;
  }

  /** Waits until the rows pass {@link #checkRows}; past the deadline, fails as it last did. */
  private void awaitRows(NodeRuntime node, String when, long deadline) throws Exception {
    while (true) {
      try {
        checkRows(node, when);
        return;
      } catch (AssertionError notYet) {
        if (System.currentTimeMillis() > deadline) {
          throw notYet;
        }
      }
      Thread.sleep(50);
    }
  }

  private void checkRows(NodeRuntime node, String when) throws Exception {
    Map<String, long[]> oracle = oracle();
    long entities = 0;
    long matching = model.values().stream().filter(state -> state.has("group")).count();
    for (String group : GROUPS) {
      StoredEntity stored = node.store().get(VIEW_TYPE, group);
      JsonNode state = stored == null ? null : Envelopes.parse(stored.state()).path("versions").get(VERSION);
      long[] expected = oracle.getOrDefault(group, new long[2]);
      long count = state == null ? 0 : state.get("entities").asLong();
      if (stored != null) {
        // A row keeps no history: its contributions would grow its storage without end.
        assertThat(node.store().history(VIEW_TYPE, group, 1, 10)).as(when + ": history of row " + group + " at version "
            + stored.version()).isEmpty();
      }
      assertThat(count).as(when + ": entities of row " + group).isEqualTo(expected[0]);
      if (state != null) {
        assertThat(state.get("row").get("count").asLong()).as(when + ": count of row " + group).isEqualTo(expected[0]);
        assertThat(state.get("row").get("sum").asLong()).as(when + ": sum of row " + group).isEqualTo(expected[1]);
      }
      entities += count;
    }
    assertThat(entities).as(when + ": entities over all rows").isEqualTo(matching);
  }

  /**
   * Reads answer once the node directory has seen the view's version complete in every partition
   * (a node that just started does not know that yet, and answers 503).
   */
  private static void awaitLive(NodeRuntime node, WebClient http, String when) throws Exception {
    long deadline = System.currentTimeMillis() + 30_000;
    JsonNode view;
    do {
      view = TestNodes.call(http, HttpMethod.GET, node.httpPort(), "/v1/_views", null, Map.of()).body().get("views").get(0);
      if (VERSION.equals(view.path("version").asText())) {
        return;
      }
      Thread.sleep(50);
    } while (System.currentTimeMillis() < deadline);
    throw new AssertionError(when + ": the view answers no version: " + view);
  }

  /** Every row through HTTP: {key, row, entities}, 404 for a group without members; the internal type is not a type. */
  private void checkReads(NodeRuntime node, WebClient http, String when) throws Exception {
    Map<String, long[]> oracle = oracle();
    int port = node.httpPort();
    for (String group : GROUPS) {
      TestNodes.Reply reply = TestNodes.call(http, HttpMethod.GET, port, "/v1/_views/totals/" + group, null, Map.of());
      long[] expected = oracle.get(group);
      if (expected == null) {
        assertThat(reply.status()).as(when + ": GET of the empty row " + group).isEqualTo(404);
      } else {
        assertThat(reply.status()).as(when + ": GET of row " + group).isEqualTo(200);
        assertThat(reply.body().get("key").asText()).isEqualTo(group);
        assertThat(reply.body().get("entities").asLong()).as(when + ": entities of " + group).isEqualTo(expected[0]);
        assertThat(reply.body().get("row").get("count").asLong()).isEqualTo(expected[0]);
        assertThat(reply.body().get("row").get("sum").asLong()).as(when + ": sum of " + group).isEqualTo(expected[1]);
      }
    }
    TestNodes.Reply views = TestNodes.call(http, HttpMethod.GET, port, "/v1/_views", null, Map.of());
    assertThat(views.status()).isEqualTo(200);
    assertThat(views.body().get("views").get(0).get("name").asText()).isEqualTo("totals");
    assertThat(views.body().get("views").get(0).get("from").get(0).asText()).isEqualTo("members");
    assertThat(views.body().get("views").get(0).get("version").asText()).isEqualTo(VERSION);
    assertThat(views.body().get("views").get(0).get("state").asText()).isEqualTo("live");
    assertThat(TestNodes.call(http, HttpMethod.GET, port, "/v1/_views/nope/g0", null, Map.of()).status())
        .as("an unknown view").isEqualTo(404);
    assertThat(TestNodes.call(http, HttpMethod.GET, port, "/v1/" + VIEW_TYPE + "/g0", null, Map.of()).status())
        .as("the view's folded type read as a type").isEqualTo(404);
    assertThat(TestNodes.call(http, HttpMethod.POST, port, "/v1/" + VIEW_TYPE + "/g0/commands",
        "{\"type\": \"x\", \"payload\": {}}", Map.of("content-type", "application/json")).status())
        .as("a command to the view's folded type").isEqualTo(404);
  }
}
