package io.kfold.http;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.TestBroker;
import io.kfold.TestLog;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.store.EntityStore;
import io.kfold.types.Envelopes;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.ext.web.client.WebClient;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.LogEvent;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.appender.AbstractAppender;
import org.apache.logging.log4j.core.config.Configuration;
import org.apache.logging.log4j.core.config.LoggerConfig;
import org.apache.logging.log4j.core.config.Property;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.stream.StreamSupport;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * /health and /ready as checks, the correlation id from a request to the events, the change
 * records and an http worker's target, and the access log: one real node with an http worker
 * whose target is a real server in this test.
 */
@ExtendWith(TestBroker.class)
class HealthAndLogsTest {

  private static final String APPEND_ONE = "{\"events\":[{\"type\":\"Registered\",\"payload\":{\"name\":\"Ada\"}}]}";
  private static final String UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";

  private static Vertx vertx;
  private static WebClient client;
  private static HttpServer target;
  /** The X-Correlation-Id of each call the worker made to the target (empty string when absent), by Idempotency-Key (the event's id). */
  private static final Map<String, List<String>> targetCorrelationIds = new ConcurrentHashMap<>();
  private static final List<String> accessLog = new CopyOnWriteArrayList<>();
  private static Runnable stopCapture;
  /** While set, the store's health read hangs past its deadline; the fold's reads go on. */
  private static volatile boolean storeHangs;
  private static NodeConfig config;
  private static NodeRuntime node;

  @BeforeAll
  static void start() throws Exception {
    vertx = Vertx.vertx();
    client = WebClient.create(vertx);
    target = vertx.createHttpServer().requestHandler(request -> {
      String id = request.getHeader("X-Correlation-Id");
      targetCorrelationIds.computeIfAbsent(request.getHeader("Idempotency-Key"), k -> new CopyOnWriteArrayList<>())
          .add(id == null ? "" : id);
      request.response().setStatusCode(200).end();
    }).listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
    stopCapture = capture("io.kfold.access", accessLog);
    String app = TestNodes.newApp("health");
    Path dir = TestNodes.tempDir("health");
    Map<String, String> env = TestNodes.envWithEffects(app, dir, "hook:\n"
        + "  kind: http\n"
        + "  entities: [users]\n"
        + "  target: { url: \"http://127.0.0.1:" + target.actualPort() + "/hook\" }\n");
    env.put("KFOLD_HTTP_ACCESS_LOG", "true");
    config = NodeConfig.load(env);
    node = NodeRuntime.start(vertx, config, NodeRuntime.Options.DEFAULTS.withStore(HealthAndLogsTest::hangingHealthReads))
        .await(60, TimeUnit.SECONDS);
    TestNodes.awaitCaughtUp(node);
  }

  @AfterAll
  static void stop() throws Exception {
    if (node != null) {
      node.stop().await(60, TimeUnit.SECONDS);
    }
    stopCapture.run();
    vertx.close().await(30, TimeUnit.SECONDS);
  }

  @Test
  @DisplayName("a write's X-Correlation-Id is answered, kept in its event's meta and change record, sent to the http"
      + " worker's target, and written in the access-log line")
  void correlationIdTravels() throws Exception {
    Reply written = call(HttpMethod.POST, "/v1/users/c1/events", APPEND_ONE, Map.of("X-Correlation-Id", "order-flow-42"));
    assertThat(written.status()).as(written.toString()).isEqualTo(200);
    assertThat(written.header("X-Correlation-Id")).isEqualTo("order-flow-42");

    List<JsonNode> events = TestLog.events(config.eventsTopic("users"), "c1");
    assertThat(events).hasSize(1);
    assertThat(events.get(0).path("meta").path("correlationId").asText()).isEqualTo("order-flow-42");
    await("the change record is published", () -> !changes("c1").isEmpty());
    assertThat(changes("c1").get(0).path("event").path("meta").path("correlationId").asText()).isEqualTo("order-flow-42");
    String eventId = events.get(0).path("id").asText();
    await("the worker called its target", () -> targetCorrelationIds.containsKey(eventId));
    assertThat(targetCorrelationIds.get(eventId)).containsExactly("order-flow-42");

    await("the access-log line", () -> logged("POST /v1/:type/:id/events /v1/users/c1/events 200 ").size() == 1);
    assertThat(logged("POST /v1/:type/:id/events /v1/users/c1/events 200 ").get(0))
        .matches("POST /v1/:type/:id/events /v1/users/c1/events 200 [0-9.]+ ms correlationId=order-flow-42 node=.+");
  }

  @Test
  @DisplayName("a request without X-Correlation-Id gets a new one; an unprintable or overlong one is a 400 problem;"
      + " a failed request's line names its route")
  void correlationIdMadeOrRefused() throws Exception {
    call(HttpMethod.POST, "/v1/users/c2/events", APPEND_ONE, Map.of());
    Reply read = call(HttpMethod.GET, "/v1/users/c2", null, Map.of());
    assertThat(read.status()).isEqualTo(200);
    String made = read.header("X-Correlation-Id");
    assertThat(made).matches(UUID);
    await("the GET's line", () -> !logged("GET /v1/:type/:id /v1/users/c2 200 ").isEmpty());
    assertThat(logged("GET /v1/:type/:id /v1/users/c2 200 ").get(0)).contains("correlationId=" + made + " ");
    String appended = TestLog.events(config.eventsTopic("users"), "c2").get(0).path("meta").path("correlationId").asText();
    assertThat(appended).as("the write's own new id").matches(UUID).isNotEqualTo(made);

    for (String invalid : List.of("x".repeat(129), "two words")) {
      Reply refused = call(HttpMethod.GET, "/v1/users/c2", null, Map.of("X-Correlation-Id", invalid));
      assertThat(refused.status()).as(invalid).isEqualTo(400);
      assertThat(refused.contentType()).isEqualTo("application/problem+json");
      assertThat(refused.body().path("detail").asText()).contains("X-Correlation-Id");
    }
    assertThat(call(HttpMethod.GET, "/v1/users/c2", null, Map.of("X-Correlation-Id", "x".repeat(128))).status())
        .isEqualTo(200);

    assertThat(call(HttpMethod.GET, "/v1/users/nobody", null, Map.of("X-Correlation-Id", "q-1")).status())
        .isEqualTo(404);
    await("the 404's line", () -> !logged("GET /v1/:type/:id /v1/users/nobody 404 ").isEmpty());
    assertThat(logged("GET /v1/:type/:id /v1/users/nobody 404 ").get(0)).contains("correlationId=q-1 ");
  }

  @Test
  @DisplayName("/health has a check per supervised loop and the store, and is 503 naming the store while it does not"
      + " answer in time; /ready checks the broker, the fold and its partitions")
  void checks() throws Exception {
    Reply health = call(HttpMethod.GET, "/health", null, Map.of());
    assertThat(health.status()).as(health.toString()).isEqualTo(200);
    List<String> loops = new ArrayList<>();
    health.body().path("loops").fieldNames().forEachRemaining(loops::add);
    assertThat(loops).contains("fold", "effects.hook");
    List<String> expected = new ArrayList<>(loops);
    expected.add("store");
    assertThat(ids(health.body())).containsExactlyInAnyOrderElementsOf(expected);
    assertThat(health.body().path("checks")).allMatch(check -> check.path("status").asText().equals("UP"));
    assertThat(health.body().path("checks")).filteredOn(check -> check.path("id").asText().equals("fold")).singleElement()
        .satisfies(fold -> assertThat(fold.path("data").path("state").asText()).isEqualTo("UP"));
    assertThat(health.body().path("outcome").asText()).isEqualTo("UP");

    Reply ready = call(HttpMethod.GET, "/ready", null, Map.of());
    assertThat(ready.status()).as(ready.toString()).isEqualTo(200);
    assertThat(ready.body().path("status").asText()).isEqualTo("READY");
    assertThat(ids(ready.body())).containsExactlyInAnyOrder("broker", "fold", "partitions");
    assertThat(ready.body().path("broker").asText()).isEqualTo("reachable");
    assertThat(ready.body().path("lag").size()).isPositive();
    assertThat(ready.body().path("caughtUp").isBoolean()).isTrue();

    storeHangs = true;
    try {
      Reply down = call(HttpMethod.GET, "/health", null, Map.of());
      assertThat(down.status()).as(down.toString()).isEqualTo(503);
      assertThat(down.body().path("status").asText()).isEqualTo("DOWN");
      assertThat(down.body().path("detail").asText()).startsWith("down: store (").contains("Timeout");
    } finally {
      storeHangs = false;
    }
    await("/health is 200 again", () -> status("/health") == 200);
  }

  private static List<String> ids(JsonNode body) {
    return StreamSupport.stream(body.path("checks").spliterator(), false).map(check -> check.path("id").asText()).toList();
  }

  private static int status(String path) {
    try {
      return call(HttpMethod.GET, path, null, Map.of()).status();
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  /** The change records of one entity in the users' changes topic, committed ones only. */
  private static List<JsonNode> changes(String key) {
    List<JsonNode> changes = new ArrayList<>();
    for (ConsumerRecord<byte[], byte[]> record : TestLog.committedRecords(config.changesTopic("users"))) {
      if (key.equals(new String(record.key(), StandardCharsets.UTF_8))) {
        try {
          changes.add(Envelopes.parse(record.value()));
        } catch (java.io.IOException e) {
          throw new IllegalStateException(e);
        }
      }
    }
    return changes;
  }

  private static List<String> logged(String start) {
    return accessLog.stream().filter(line -> line.startsWith(start)).toList();
  }

  private static Reply call(HttpMethod method, String path, String body, Map<String, String> headers) throws Exception {
    return TestNodes.call(client, method, node.httpPort(), path, body, headers);
  }

  private static void await(String what, BooleanSupplier condition) throws InterruptedException {
    long deadline = System.currentTimeMillis() + 60_000;
    while (!condition.getAsBoolean()) {
      if (System.currentTimeMillis() > deadline) {
        throw new AssertionError("timed out waiting for " + what + "; access log: " + accessLog);
      }
      Thread.sleep(20);
    }
  }

  /**
   * The node's real store; only the read of the offset the health check asks for (a topic no node
   * folds) waits, while {@link #storeHangs}, longer than the check's deadline.
   */
  private static EntityStore hangingHealthReads(EntityStore store) {
    return (EntityStore) Proxy.newProxyInstance(EntityStore.class.getClassLoader(), new Class<?>[] {EntityStore.class},
        (proxy, method, args) -> {
          if (storeHangs && method.getName().equals("nextOffset") && NodeHealth.PROBE_TOPIC.equals(args[0])) {
            Thread.sleep(NodeHealth.STORE_DEADLINE_MS * 3L);
          }
          try {
            return method.invoke(store, args);
          } catch (InvocationTargetException e) {
            throw e.getCause();
          }
        });
  }

  /** Collects the formatted messages of one logger, at INFO, kept out of the test's output. */
  static Runnable capture(String loggerName, List<String> lines) {
    LoggerContext context = (LoggerContext) LogManager.getContext(false);
    Configuration configuration = context.getConfiguration();
    AbstractAppender appender = new AbstractAppender("capture-" + loggerName, null, null, true, Property.EMPTY_ARRAY) {
      @Override
      public void append(LogEvent event) {
        lines.add(event.getMessage().getFormattedMessage());
      }
    };
    appender.start();
    configuration.addAppender(appender);
    LoggerConfig logger = new LoggerConfig(loggerName, Level.INFO, false);
    logger.addAppender(appender, Level.INFO, null);
    configuration.addLogger(loggerName, logger);
    context.updateLoggers();
    return () -> {
      configuration.removeLogger(loggerName);
      context.updateLoggers();
      appender.stop();
    };
  }
}
