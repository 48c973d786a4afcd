package io.kfold.effects;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.Await;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.PluginJars;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.kfold.entity.Change;
import io.kfold.entity.EffectSink;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.WebClient;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.LongStream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Workers of kind sink: an application's own {@link EffectSink}, registered in code or found by
 * {@code class:} in a plugin jar built here, gets the changes of its entities with everything a
 * built-in worker gives (order per entity, retries, dead letters, parking, replay). A sink that
 * cannot be had stops the start, saying which.
 */
@ExtendWith(TestBroker.class)
class SinkEffectTest {

  /** Writes a line per change to the file its settings name, off the event loop; and one when closed. */
  private static final String TRAIL_SINK = """
      package acme.sink;
      import com.fasterxml.jackson.databind.JsonNode;
      import io.kfold.entity.*;
      import io.vertx.core.*;
      import java.nio.charset.StandardCharsets;
      import java.nio.file.*;
      public class TrailSink implements EffectSink {
        private final Path file;
        private final String prefix;
        public TrailSink(JsonNode settings) {
          file = Path.of(settings.path("file").asText());
          prefix = settings.path("prefix").asText();
        }
        public Future<Void> deliver(Change change) {
          String line = prefix + " " + change.entity() + "/" + change.changeId() + " " + change.eventType() + " n="
              + change.state().path("n").asText() + "\\n";
          return Vertx.currentContext().owner().executeBlocking(() -> write(line));
        }
        public Future<Void> close() {
          try {
            write("closed\\n");
            return Future.succeededFuture();
          } catch (java.io.IOException e) {
            return Future.failedFuture(e);
          }
        }
        private Void write(String line) throws java.io.IOException {
          Files.writeString(file, line, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
          return null;
        }
      }
      """;

  private static final String NOT_A_SINK = """
      package acme.bad;
      public class NotASink {}
      """;

  private static final String THROWING_SINK = """
      package acme.bad;
      import io.kfold.entity.*;
      import io.vertx.core.Future;
      public class ThrowingSink implements EffectSink {
        public ThrowingSink() { throw new IllegalStateException("no audit store configured"); }
        public Future<Void> deliver(Change change) { return Future.succeededFuture(); }
      }
      """;

  private static Path root;
  private static Path good;
  private static Path broken;
  private static Vertx vertx;

  @BeforeAll
  static void buildPlugins() throws Exception {
    root = TestNodes.tempDir("sinks");
    good = Files.createDirectories(root.resolve("good"));
    broken = Files.createDirectories(root.resolve("broken"));
    PluginJars.build(good.resolve("trail.jar"), Map.of("acme.sink.TrailSink", TRAIL_SINK), Map.of());
    PluginJars.build(broken.resolve("broken-sinks.jar"), Map.of("acme.bad.NotASink", NOT_A_SINK,
        "acme.bad.ThrowingSink", THROWING_SINK), Map.of());
    vertx = Vertx.vertx();
  }

  @AfterAll
  static void closeVertx() {
    vertx.close().await();
  }

  /**
   * Keeps what it was given. A change whose payload says {@code poison} fails for good while
   * {@link #refusePoison}; one that says {@code flaky} fails its first try with an ordinary error.
   */
  private static final class Recorder implements EffectSink {
    final List<Change> delivered = new CopyOnWriteArrayList<>();
    final Map<String, AtomicInteger> tries = new ConcurrentHashMap<>();
    volatile boolean refusePoison = true;
    volatile boolean closed;

    @Override
    public Future<Void> deliver(Change change) {
      int tried = tries.computeIfAbsent(change.changeId(), id -> new AtomicInteger()).incrementAndGet();
      if (refusePoison && change.payload().path("poison").asBoolean()) {
        return Future.failedFuture(new PermanentFailure("poisoned " + change.changeId()));
      }
      if (tried == 1 && change.payload().path("flaky").asBoolean()) {
        return Future.failedFuture(new IllegalStateException("flaky " + change.changeId()));
      }
      delivered.add(change);
      return Future.succeededFuture();
    }

    @Override
    public Future<Void> close() {
      closed = true;
      return Future.succeededFuture();
    }

    List<Long> versions(String key) {
      return delivered.stream().filter(c -> c.key().equals(key)).map(Change::version).toList();
    }
  }

  @Test
  @DisplayName("a sink registered in code gets each change of its entities once and in order; a permanent failure"
      + " parks its entity until a replay delivers it; another failure is retried; kfold leaves the sink open")
  void registeredSink() throws Exception {
    String app = TestNodes.newApp("sink");
    Path dir = root.resolve(app);
    String worker = """
        ledger:
          kind: sink
          entities: [users]
          retry: { attempts: 5, initialDelayMs: 10, maxDelayMs: 50 }
          target: { name: recorder }
        """;
    NodeConfig config = NodeConfig.load(quick(TestNodes.envWithEffects(app, dir, worker)));
    Recorder recorder = new Recorder();
    NodeRuntime node = NodeRuntime.start(vertx, config, NodeRuntime.Options.DEFAULTS.withSink("recorder", recorder))
        .await(60, TimeUnit.SECONDS);
    WebClient client = WebClient.create(vertx);
    try {
      TestNodes.awaitCaughtUp(node);
      int entities = 8;
      int perEntity = 5;
      for (int e = 0; e < entities; e++) {
        List<String> events = new ArrayList<>();
        for (int n = 1; n <= perEntity; n++) {
          // The first event sets a field the later ones leave alone: the state keeps it, their payloads lack it.
          events.add(event(n == 1 ? "{\"n\": 1, \"since\": \"v1\"}" : "{\"n\": " + n + "}", "c-u" + e));
        }
        produce(config, "u" + e, events);
      }
      produce(config, "f", List.of(event("{\"n\": 1, \"flaky\": true}", "c-f"), event("{\"n\": 2}", "c-f")));
      produce(config, "p", List.of(event("{\"n\": 1}", "c-p"), event("{\"n\": 2, \"poison\": true}", "c-p"),
          event("{\"n\": 3}", "c-p")));

      Await.until("every change but p's second and third delivered, p parked behind its second",
          () -> recorder.delivered.size() == entities * perEntity + 2 + 1
              && parked(client, node).toString().contains("\"p:3\""));
      List<Long> all = LongStream.rangeClosed(1, perEntity).boxed().toList();
      for (int e = 0; e < entities; e++) {
        assertThat(recorder.versions("u" + e)).as("u%d", e).isEqualTo(all);
      }
      assertThat(recorder.delivered).extracting(Change::eventId).doesNotHaveDuplicates();
      Change sample = recorder.delivered.stream().filter(c -> c.key().equals("u3") && c.version() == 2).findFirst()
          .orElseThrow();
      assertThat(sample.entity()).isEqualTo("users");
      assertThat(sample.eventType()).isEqualTo("Seen");
      assertThat(sample.payload().path("n").asInt()).isEqualTo(2);
      assertThat(sample.payload().has("since")).isFalse();
      assertThat(sample.state().path("n").asInt()).as("the state after the event").isEqualTo(2);
      assertThat(sample.state().path("since").asText()).as("the state after the event").isEqualTo("v1");
      assertThat(sample.correlationId()).isEqualTo("c-u3");
      assertThat(sample.time()).isNotNull();
      assertThat(sample.changeId()).isEqualTo("u3:2");

      assertThat(recorder.versions("f")).containsExactly(1L, 2L);
      assertThat(recorder.tries.get("f:1").get()).as("tries of the flaky change").isEqualTo(2);
      assertThat(recorder.versions("p")).containsExactly(1L);
      assertThat(recorder.tries.get("p:2").get()).as("tries of the poisoned change, never retried").isEqualTo(1);
      assertThat(recorder.tries).as("p:3 waits behind p:2, untried").doesNotContainKey("p:3");
      JsonNode p = parked(client, node).path("parked").get(0);
      assertThat(p.path("key").asText()).isEqualTo("p");
      assertThat(p.path("events").get(0).path("id").asText()).isEqualTo("p:2");
      assertThat(p.path("events").get(0).path("error").asText()).contains("poisoned p:2");

      recorder.refusePoison = false;  // the sink is fixed
      Reply replayed = TestNodes.call(client, HttpMethod.POST, node.httpPort(), "/v1/_effects/ledger/parked/p/replay",
          null, Map.of());
      assertThat(replayed.status()).as(String.valueOf(replayed.body())).isEqualTo(200);
      assertThat(replayed.body().path("replayed").asInt()).isEqualTo(2);
      assertThat(recorder.versions("p")).containsExactly(1L, 2L, 3L);
      produce(config, "p", List.of(event("{\"n\": 4}", "c-p")));
      Await.until("p:4 delivered after the replay", () -> recorder.versions("p").size() == 4);
      assertThat(recorder.versions("p")).containsExactly(1L, 2L, 3L, 4L);
      JsonNode stats = TestNodes.call(client, HttpMethod.GET, node.httpPort(), "/v1/_effects", null, Map.of()).body()
          .path("workers").path("ledger");
      assertThat(stats.path("deadLettered").asInt()).isEqualTo(1);
      assertThat(stats.path("parked").asInt()).isEqualTo(1);
    } finally {
      client.close();
      node.stop().await(60, TimeUnit.SECONDS);
    }
    assertThat(recorder.closed).as("a registered sink is the application's to close").isFalse();
  }

  @Test
  @DisplayName("a class: sink from a plugin jar is created with its settings, delivers each change, and is closed"
      + " with the node")
  void pluginSink() throws Exception {
    Path dir = root.resolve(TestNodes.newApp("sink-plugin"));
    Path trail = dir.resolve("trail.txt");
    NodeConfig config = NodeConfig.load(withTrailSink(dir, trail));
    NodeRuntime node = NodeRuntime.start(vertx, config).await(60, TimeUnit.SECONDS);
    List<String> expected = List.of("seen users/t1:1 Seen n=1", "seen users/t1:2 Seen n=2", "seen users/t1:3 Seen n=3");
    try {
      TestNodes.awaitCaughtUp(node);
      produce(config, "t1", List.of(event("{\"n\": 1}", null), event("{\"n\": 2}", null), event("{\"n\": 3}", null)));
      Await.until("the trail holds t1's three changes", () -> lines(trail).size() >= 3);
      assertThat(lines(trail)).isEqualTo(expected);
    } finally {
      node.stop().await(60, TimeUnit.SECONDS);
    }
    List<String> withClose = new ArrayList<>(expected);
    withClose.add("closed");
    assertThat(lines(trail)).as("kfold closes the sink it created").isEqualTo(withClose);
  }

  @Test
  @DisplayName("a class: sink kfold created is closed when the start fails after it (here on a missing TLS file)")
  void pluginSinkClosedWhenTheStartFails() throws Exception {
    Path dir = root.resolve(TestNodes.newApp("sink-failed-start"));
    Path trail = dir.resolve("trail.txt");
    Map<String, String> env = withTrailSink(dir, trail);
    env.put("KFOLD_HTTP_TLS_CERTIFICATE", dir.resolve("missing-cert.pem").toString());
    env.put("KFOLD_HTTP_TLS_KEY", dir.resolve("missing-key.pem").toString());
    NodeConfig config = NodeConfig.load(env);
    assertThatThrownBy(() -> NodeRuntime.start(vertx, config).await(60, TimeUnit.SECONDS))
        .hasMessageContaining("missing-cert.pem");
    Await.until("the sink created for the failed start is closed", () -> lines(trail).contains("closed"));
    assertThat(lines(trail)).containsExactly("closed");
  }

  @Test
  @DisplayName("a sink class that no jar holds, that is no EffectSink, whose constructor throws or that takes no"
      + " settings, and a name that is not registered, stop the start naming the class and its jar, or the name")
  void brokenSinksStopTheStart() throws Exception {
    Path jar = broken.resolve("broken-sinks.jar");
    assertThat(startFails("{ class: acme.bad.Missing }")).contains("'effects.audit.target.class'",
        "the class acme.bad.Missing was not found", jar.toString());
    assertThat(startFails("{ class: acme.bad.NotASink }")).contains("'effects.audit.target.class'",
        "the class acme.bad.NotASink (from " + jar + ") is not an io.kfold.entity.EffectSink");
    assertThat(startFails("{ class: acme.bad.ThrowingSink }")).contains("the class acme.bad.ThrowingSink (from " + jar
        + ") failed in its constructor: java.lang.IllegalStateException: no audit store configured");
    assertThat(startFails("{ class: acme.bad.ThrowingSink, settings: { a: 1 } }")).contains(
        "the class acme.bad.ThrowingSink (from " + jar + ") has settings but no public constructor");
    assertThat(startFails("{ name: nobody }")).contains("'effects.audit.target.name' is 'nobody', but no sink is"
        + " registered under that name");
  }

  /** Starts a node whose worker has {@code target}; answers why it failed. */
  private static String startFails(String target) {
    String app = TestNodes.newApp("sink-bad");
    Map<String, String> env = TestNodes.envWithEffects(app, root.resolve(app),
        "audit:\n  kind: sink\n  entities: [users]\n  target: " + target + "\n");
    env.put("KFOLD_PLUGINS_DIR", broken.toString());
    NodeConfig config = NodeConfig.load(env);
    Throwable[] failure = new Throwable[1];
    assertThatThrownBy(() -> NodeRuntime.start(vertx, config).await(30, TimeUnit.SECONDS))
        .isInstanceOf(IllegalArgumentException.class)
        .satisfies(e -> failure[0] = e);
    return failure[0].getMessage();
  }

  /** One partition per topic: fewer topics to create, a quicker start. */
  private static Map<String, String> quick(Map<String, String> env) {
    Map<String, String> quicker = new HashMap<>(env);
    quicker.put("KFOLD_KAFKA_PARTITIONS", "1");
    return quicker;
  }

  private static String event(String payload, String correlationId) {
    return "{\"type\": \"Seen\", \"payload\": " + payload
        + (correlationId == null ? "" : ", \"meta\": {\"correlationId\": \"" + correlationId + "\"}") + "}";
  }

  /** A node of the app in {@code dir} with one worker, the plugin's TrailSink writing to {@code trail}. */
  private static Map<String, String> withTrailSink(Path dir, Path trail) {
    String worker = """
        trail:
          kind: sink
          entities: [users]
          target: { class: acme.sink.TrailSink, settings: { file: "%s", prefix: seen } }
        """.formatted(trail);
    Map<String, String> env = quick(TestNodes.envWithEffects(dir.getFileName().toString(), dir, worker));
    env.put("KFOLD_PLUGINS_DIR", good.toString());
    return env;
  }

  /** Events of one entity, as an outside producer writes them. */
  private static void produce(NodeConfig config, String key, List<String> events) {
    try (KafkaProducer<byte[], byte[]> producer = TestNodes.plainProducer()) {
      for (String event : events) {
        producer.send(new ProducerRecord<>(config.eventsTopic("users"), key.getBytes(StandardCharsets.UTF_8),
            event.getBytes(StandardCharsets.UTF_8)));
      }
    }
  }

  private static JsonNode parked(WebClient client, NodeRuntime node) throws Exception {
    return TestNodes.call(client, HttpMethod.GET, node.httpPort(), "/v1/_effects/ledger/parked", null, Map.of()).body();
  }

  private static List<String> lines(Path file) throws Exception {
    return Files.exists(file) ? Files.readAllLines(file, StandardCharsets.UTF_8) : List.of();
  }
}
