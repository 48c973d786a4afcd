package io.kfold.view;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.types.Envelopes;
import io.kfold.store.StoredEntity;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.WebClient;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Views built from the stored states, not from the log, while events keep coming: a view added to
 * an application that has entities already, a rebuild asked for over HTTP while a reader reads, and
 * a changed definition after a restart. Each time the rows equal a recomputation from the final
 * states, and reads never go without an answer once a version is complete: they answer from the
 * old version until the new one is complete everywhere, then from the new one, never back.
 */
@ExtendWith(TestBroker.class)
class ViewRebuildTest {

  /** More members than a build reads in one step: a build takes several rounds of the fold. */
  private static final int KEYS = 2500;
  private static final String[] GROUPS = {"g0", "g1", "g2", "g3", "g4", "g5", "g6", "g7"};

  private final Random random = new Random(1414);
  /** The test's own fold of what it wrote: key → state. Written by one writer at a time. */
  private final Map<String, ObjectNode> model = new TreeMap<>();
  /** Per events partition, the offset after the last event written. */
  private final Map<Integer, Long> written = new ConcurrentHashMap<>();

  @Test
  @DisplayName("a view added to entities, rebuilt on request and changed at a restart is built from the states while"
      + " the old version answers; each equals a recomputation")
  void buildsFromStatesWhileTheOldVersionAnswers() throws Exception {
    String app = TestNodes.newApp("rebuild");
    Vertx vertx = Vertx.vertx();
    WebClient http = WebClient.create(vertx);
    try (KafkaProducer<byte[], byte[]> producer = TestNodes.plainProducer()) {
      NodeConfig config = NodeConfig.load(ViewFoldTest.env(app, TestNodes.tempDir("rebuild")));
      String events = config.eventsTopic(ViewFoldTestView.TYPE);

      // Entities first, without the view.
      NodeRuntime node = start(vertx, config, NodeRuntime.Options.DEFAULTS);
      writePatches(producer, events, 6000);
      awaitFolded(node, events);
      node.stop().await(60, TimeUnit.SECONDS);

      // The view added: its first version is built from the stored states while patches keep coming.
      ViewVersion first = ViewVersion.of(new ViewFoldTestView(), 1);
      Writer writer = new Writer(producer, events);
      node = start(vertx, config, NodeRuntime.Options.DEFAULTS.withView(new ViewFoldTestView()));
      Reader reader = new Reader(http, node.httpPort());
      awaitLive(http, node.httpPort(), first);
      writer.stop();
      awaitFolded(node, events);
      awaitRowsEqualOracle(http, node.httpPort(), first, 1);
      reader.stop();
      assertThat(reader.answers).as("answers while the first version was built: 503, then from it")
          .allMatch(answer -> answer.status() == 503 || answer.status() == 200 && answer.version().equals(first));

      // A rebuild while patches keep coming: the first version answers until the second is complete.
      writer = new Writer(producer, events);
      reader = new Reader(http, node.httpPort());
      TestNodes.Reply asked = TestNodes.call(http, HttpMethod.POST, node.httpPort(), "/v1/_views/totals/rebuild", null,
          Map.of());
      ViewVersion second = ViewVersion.of(new ViewFoldTestView(), 2);
      assertThat(asked.status()).as("rebuild asked: %s", asked.body()).isEqualTo(202);
      assertThat(asked.body().get("target").asText()).isEqualTo(second.toString());
      assertThat(asked.body().get("version").asText()).isEqualTo(first.toString());
      awaitLive(http, node.httpPort(), second);
      writer.stop();
      awaitFolded(node, events);
      awaitRowsEqualOracle(http, node.httpPort(), second, 1);
      reader.stop();
      assertAnsweredThroughout(reader, first, second);
      // Rows that changed after the switch keep the second version's part alone.
      long withFirst = 0;
      for (String group : GROUPS) {
        StoredEntity row = node.store().get(ViewType.typeName(ViewFoldTestView.NAME), group);
        withFirst += ViewType.versionsOf(Envelopes.parse(row.state())).contains(first) ? 1 : 0;
      }
      writePatches(producer, events, 400);  // touches every group
      awaitFolded(node, events);
      awaitRowsEqualOracle(http, node.httpPort(), second, 1);
      for (String group : GROUPS) {
        StoredEntity row = node.store().get(ViewType.typeName(ViewFoldTestView.NAME), group);
        assertThat(ViewType.versionsOf(Envelopes.parse(row.state()))).as("versions of row " + group + " (" + withFirst
            + " rows still had the first before the last patches)").containsExactly(second);
      }
      node.stop().await(60, TimeUnit.SECONDS);

      // A changed definition: the node starts with it, builds its version while the old one answers.
      ViewVersion changed = ViewVersion.of(new ViewFoldTestView(2), 1);
      writer = new Writer(producer, events);
      node = start(vertx, config, NodeRuntime.Options.DEFAULTS.withView(new ViewFoldTestView(2)));
      reader = new Reader(http, node.httpPort());
      awaitLive(http, node.httpPort(), changed);
      writer.stop();
      awaitFolded(node, events);
      awaitRowsEqualOracle(http, node.httpPort(), changed, 2);
      reader.stop();
      assertAnsweredThroughout(reader, second, changed);
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

  /**
   * Once the reader had a first answer (a node that just started knows no complete version until
   * the claims say), every read answered 200, first from {@code old}, then from {@code next}, never
   * back; and {@code next} answered in the end.
   */
  private static void assertAnsweredThroughout(Reader reader, ViewVersion old, ViewVersion next) {
    List<Answer> answers = new ArrayList<>(reader.answers);
    int first = 0;
    while (first < answers.size() && answers.get(first).status() == 503) {
      first++;
    }
    List<Answer> answered = answers.subList(first, answers.size());
    assertThat(answered).as("reads once answered").isNotEmpty()
        .allMatch(answer -> answer.status() == 200, "answered 200");
    List<ViewVersion> versions = new ArrayList<>();
    answered.forEach(answer -> {
      if (versions.isEmpty() || !versions.get(versions.size() - 1).equals(answer.version())) {
        versions.add(answer.version());
      }
    });
    assertThat(versions).as("versions read, in order").isIn(List.of(old, next), List.of(next));
  }

  /** Waits until {@code GET /v1/_views} says the view answers from {@code version} and it is live. */
  private static void awaitLive(WebClient http, int port, ViewVersion version) throws Exception {
    long deadline = System.currentTimeMillis() + 90_000;
    JsonNode view = null;
    while (System.currentTimeMillis() < deadline) {
      view = TestNodes.call(http, HttpMethod.GET, port, "/v1/_views", null, Map.of()).body().get("views").get(0);
      if (view.get("state").asText().equals("live") && version.toString().equals(view.get("version").asText())) {
        assertThat(view.get("partitionsBuilt").asInt()).isEqualTo(view.get("partitions").asInt());
        return;
      }
      Thread.sleep(100);
    }
    throw new AssertionError("view not live at " + version + ": " + view);
  }

  /**
   * Waits until every row read over HTTP equals the recomputation from the model (the view may
   * still be folding the last contributions); fails with the last difference.
   */
  private void awaitRowsEqualOracle(WebClient http, int port, ViewVersion version, int factor) throws Exception {
    Map<String, String> expected = new TreeMap<>();
    Map<String, long[]> oracle = new TreeMap<>();
    model.values().forEach(state -> {
      if (state.has("group")) {
        long[] row = oracle.computeIfAbsent(state.get("group").asText(), g -> new long[2]);
        row[0]++;
        row[1] += factor * (state.has("n") ? state.get("n").asLong() : 0);
      }
    });
    for (String group : GROUPS) {
      long[] row = oracle.get(group);
      expected.put(group, row == null ? "404" : "{entities=" + row[0] + ", count=" + row[0] + ", sum=" + row[1]
          + ", version=" + version + "}");
    }
    long deadline = System.currentTimeMillis() + 60_000;
    Map<String, String> read = new TreeMap<>();
    do {
      for (String group : GROUPS) {
        TestNodes.Reply reply = TestNodes.call(http, HttpMethod.GET, port, "/v1/_views/totals/" + group, null, Map.of());
        read.put(group, reply.status() != 200 ? String.valueOf(reply.status())
            : "{entities=" + reply.body().get("entities") + ", count=" + reply.body().get("row").get("count") + ", sum="
            + reply.body().get("row").get("sum") + ", version=" + reply.body().get("version").asText() + "}");
      }
      if (read.equals(expected)) {
        return;
      }
      Thread.sleep(100);
    } while (System.currentTimeMillis() < deadline);
    assertThat(read).as("rows of version " + version + " against a recomputation from the states").isEqualTo(expected);
  }

  private void awaitFolded(NodeRuntime node, String events) throws InterruptedException {
    long deadline = System.currentTimeMillis() + 60_000;
    for (Map.Entry<Integer, Long> partition : written.entrySet()) {
      while (node.store().nextOffset(events, partition.getKey()).orElse(0) < partition.getValue()) {
        assertThat(System.currentTimeMillis()).as("members partition " + partition.getKey() + " folded")
            .isLessThan(deadline);
        Thread.sleep(20);
      }
    }
  }

  /** Random merge patches: a member joins, changes or leaves (null) a group, its n changes or goes. */
  private void writePatches(KafkaProducer<byte[], byte[]> producer, String events, int count) throws Exception {
    List<Future<RecordMetadata>> sent = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      String key = "m" + random.nextInt(KEYS);
      ObjectNode patch = JsonNodeFactory.instance.objectNode();
      int choice = random.nextInt(10);
      if (choice < 5) {
        if (random.nextInt(8) == 0) {
          patch.putNull("group");
        } else {
          patch.put("group", GROUPS[random.nextInt(GROUPS.length)]);
        }
      }
      if (choice >= 4) {
        if (random.nextInt(8) == 0) {
          patch.putNull("n");
        } else {
          patch.put("n", random.nextInt(101) - 50);
        }
      }
      ObjectNode state = model.computeIfAbsent(key, k -> JsonNodeFactory.instance.objectNode());
      patch.fields().forEachRemaining(member -> {
        if (member.getValue().isNull()) {
          state.remove(member.getKey());
        } else {
          state.set(member.getKey(), member.getValue());
        }
      });
      sent.add(producer.send(new ProducerRecord<>(events, key.getBytes(StandardCharsets.UTF_8), Envelopes.toBytes(patch))));
    }
    producer.flush();
    for (Future<RecordMetadata> one : sent) {
      RecordMetadata metadata = one.get(30, TimeUnit.SECONDS);
      written.merge(metadata.partition(), metadata.offset() + 1, Math::max);
    }
  }

  /** Writes patches in small batches on a thread of its own until stopped. */
  private final class Writer {
    private final AtomicBoolean running = new AtomicBoolean(true);
    private final Thread thread;
    private volatile Exception failure;

    Writer(KafkaProducer<byte[], byte[]> producer, String events) {
      thread = new Thread(() -> {
        try {
          while (running.get()) {
            writePatches(producer, events, 50);
            Thread.sleep(10);  // pacing only: the fold goes on between batches
          }
        } catch (Exception e) {
          failure = e;
        }
      }, "patch-writer");
      thread.start();
    }

    void stop() throws Exception {
      running.set(false);
      thread.join(30_000);
      if (failure != null) {
        throw failure;
      }
    }
  }

  /** A read of a row: its status and the version that answered. */
  private record Answer(int status, ViewVersion version) {}

  /** Reads rows over HTTP on a thread of its own until stopped, keeping every answer. */
  private static final class Reader {
    final List<Answer> answers = new CopyOnWriteArrayList<>();
    private final AtomicBoolean running = new AtomicBoolean(true);
    private final Thread thread;
    private volatile Exception failure;

    Reader(WebClient http, int port) {
      thread = new Thread(() -> {
        int i = 0;
        try {
          while (running.get()) {
            TestNodes.Reply reply = TestNodes.call(http, HttpMethod.GET, port,
                "/v1/_views/totals/" + GROUPS[i++ % GROUPS.length], null, Map.of());
            answers.add(new Answer(reply.status(),
                reply.status() == 200 ? ViewVersion.parse(reply.body().get("version").asText()) : null));
          }
        } catch (Exception e) {
          failure = e;
        }
      }, "row-reader");
      thread.start();
    }

    void stop() throws Exception {
      running.set(false);
      thread.join(30_000);
      if (failure != null) {
        throw failure;
      }
    }
  }
}
