package io.kfold.plugin;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.KfoldProcess;
import io.kfold.Main;
import io.kfold.PluginJars;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.vertx.core.Vertx;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The user's own Java types in the runnable kfold: jars compiled and packed here, as a user would,
 * dropped in a plugins folder, and found by {@code class:} in the configuration or by their
 * {@code META-INF/services} entry alone. A broken plugin stops the start with a message that names
 * the class and its jar.
 */
@ExtendWith(TestBroker.class)
class PluginsTest {

  private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

  /** Named by {@code class:}: a pay command is accepted for a positive amount, and rejected otherwise. */
  private static final String PAYMENTS = """
      package acme.pay;
      import com.fasterxml.jackson.databind.JsonNode;
      import com.fasterxml.jackson.databind.node.JsonNodeFactory;
      import com.fasterxml.jackson.databind.node.ObjectNode;
      import io.kfold.entity.*;
      import java.util.List;
      public class Payments implements EntityType {
        public String name() { return "payments"; }
        public JsonNode initialState() { return JsonNodeFactory.instance.objectNode().put("paid", 0); }
        public JsonNode apply(JsonNode state, Envelope event) {
          ObjectNode next = ((ObjectNode) state).deepCopy();
          next.put("currency", event.payload().path("currency").asText());
          return next.put("paid", state.path("paid").asLong() + event.payload().path("amount").asLong());
        }
        public List<NewEvent> decide(JsonNode state, long version, Command command) {
          if (command.payload().path("amount").asLong() <= 0) {
            throw new CommandRejectedException("a payment needs a positive amount");
          }
          return List.of(new NewEvent("Paid", command.payload()));
        }
      }
      """;

  /** A view written in Java, in the same jar, named by {@code class:} under {@code views:}. */
  private static final String PAYMENT_COUNT = """
      package acme.pay;
      import com.fasterxml.jackson.databind.JsonNode;
      import com.fasterxml.jackson.databind.node.ObjectNode;
      import io.kfold.entity.*;
      import io.kfold.view.*;
      import java.util.List;
      import java.util.Map;
      public class PaymentCount implements ViewDefinition {
        private final ConfiguredView counted = new ConfiguredView("payment-count", List.of("payments"), "/currency",
            Map.of(), List.of(new ConfiguredView.Field("payments", ConfiguredView.Aggregate.COUNT, null)));
        public String name() { return counted.name(); }
        public List<String> from() { return counted.from(); }
        public String fingerprint() { return counted.fingerprint(); }
        public Share share(String type, JsonNode state) { return counted.share(type, state); }
        public ObjectNode emptyRow() { return counted.emptyRow(); }
        public ObjectNode add(ObjectNode row, JsonNode values) { return counted.add(row, values); }
        public ObjectNode subtract(ObjectNode row, JsonNode values) { return counted.subtract(row, values); }
        public JsonNode answer(ObjectNode row) { return counted.answer(row); }
      }
      """;

  /** Listed in META-INF/services only: a type whose state is its last event's payload. */
  private static final String REFUNDS = """
      package acme.refund;
      import com.fasterxml.jackson.databind.JsonNode;
      import com.fasterxml.jackson.databind.node.JsonNodeFactory;
      import io.kfold.entity.*;
      public class %s implements EntityType {
        public String name() { return "refunds"; }
        public JsonNode initialState() { return JsonNodeFactory.instance.objectNode(); }
        public JsonNode apply(JsonNode state, Envelope event) { return event.payload(); }
      }
      """;

  private static final String NOT_A_TYPE = """
      package acme.bad;
      public class NotAType {}
      """;

  private static final String THROWING = """
      package acme.bad;
      import com.fasterxml.jackson.databind.JsonNode;
      import io.kfold.entity.*;
      public class Throwing implements EntityType {
        public Throwing() { throw new IllegalStateException("no licence key"); }
        public String name() { return "payments"; }
        public JsonNode initialState() { return null; }
        public JsonNode apply(JsonNode state, Envelope event) { return state; }
      }
      """;

  private static final String SERVICES = "META-INF/services/io.kfold.entity.EntityType";

  private static Path root;
  /** payments.jar (by class:) and refunds.jar (by its services entry). */
  private static Path good;
  /** broken.jar: a class that is no type, a type whose constructor throws. */
  private static Path broken;
  private static Vertx vertx;

  @BeforeAll
  static void buildPlugins() throws Exception {
    root = TestNodes.tempDir("plugins");
    good = Files.createDirectories(root.resolve("good"));
    broken = Files.createDirectories(root.resolve("broken"));
    jar(good.resolve("payments.jar"), Map.of("acme.pay.Payments", PAYMENTS, "acme.pay.PaymentCount", PAYMENT_COUNT),
        Map.of());
    jar(good.resolve("refunds.jar"), Map.of("acme.refund.Refunds", REFUNDS.formatted("Refunds")),
        Map.of(SERVICES, "# refunds, served without a types: entry\nacme.refund.Refunds\n"));
    jar(broken.resolve("broken.jar"), Map.of("acme.bad.NotAType", NOT_A_TYPE, "acme.bad.Throwing", THROWING), Map.of());
    vertx = Vertx.vertx();
  }

  @AfterAll
  static void closeVertx() {
    vertx.close().await();
  }

  @Test
  @DisplayName("a node run as the kfold process serves a type named by class: and one found by its services entry")
  void pluginTypesServed() throws Exception {
    String app = TestNodes.newApp("plugins");
    Path data = root.resolve("data-" + app);
    Map<String, String> env = withTypes(TestNodes.env(app, data), data, """
        - name: payments
          class: acme.pay.Payments
        """, """
        - name: payment-count
          class: acme.pay.PaymentCount
        """);
    env.put("KFOLD_PLUGINS_DIR", good.toString());
    env.put("KFOLD_KAFKA_PARTITIONS", "1");  // fewer topics to create: a quicker start
    KfoldProcess node = new KfoldProcess(env, root.resolve(app + ".log"));
    try {
      node.start();
      node.awaitStatus("/ready", 200);
      HttpClient http = HttpClient.newHttpClient();
      String base = "http://127.0.0.1:" + node.port() + "/v1/";

      HttpResponse<String> paid = post(http, base + "payments/p-1/commands",
          "{\"type\": \"pay\", \"payload\": {\"amount\": 25, \"currency\": \"EUR\"}}");
      assertThat(paid.statusCode()).as(paid.body()).isEqualTo(200);
      HttpResponse<String> refused = post(http, base + "payments/p-1/commands",
          "{\"type\": \"pay\", \"payload\": {\"amount\": 0}}");
      assertThat(refused.statusCode()).as(refused.body()).isEqualTo(422);
      assertThat(refused.body()).contains("a payment needs a positive amount");
      assertThat(get(http, base + "payments/p-1").body()).contains("\"version\":1", "\"paid\":25");
      awaitBody(http, base + "_views/payment-count/EUR", "\"payments\":1");

      HttpResponse<String> appended = post(http, base + "refunds/r-1/events",
          "{\"events\": [{\"type\": \"Refunded\", \"payload\": {\"order\": \"o-7\"}}]}");
      assertThat(appended.statusCode()).as(appended.body()).isEqualTo(200);
      assertThat(get(http, base + "refunds/r-1").body()).contains("\"version\":1", "\"order\":\"o-7\"");
    } finally {
      node.stopIfAlive();
    }
  }

  @Test
  @DisplayName("a class: that no jar holds, that is no EntityType, or whose constructor throws stops the start, named with its jar")
  void brokenTypesStopTheStart() throws Exception {
    assertThat(startFails("acme.bad.Missing", broken)).contains("acme.bad.Missing", "was not found",
        broken.resolve("broken.jar").toString());
    assertThat(startFails("acme.bad.NotAType", broken)).contains("the class acme.bad.NotAType (from "
        + broken.resolve("broken.jar") + ") is not an io.kfold.entity.EntityType");
    assertThat(startFails("acme.bad.Throwing", broken)).contains("the class acme.bad.Throwing (from "
        + broken.resolve("broken.jar") + ") failed in its constructor: java.lang.IllegalStateException: no licence key");
  }

  @Test
  @DisplayName("a jar that cannot be read, two types of one name, or a plugins folder that is missing stop the start")
  void brokenFoldersStopTheStart() throws Exception {
    Path damaged = Files.createDirectories(root.resolve("damaged"));
    Files.writeString(damaged.resolve("half-copied.jar"), "not a zip");
    assertThat(startFails("acme.pay.Payments", damaged)).contains("the jar " + damaged.resolve("half-copied.jar")
        + " cannot be read");

    // Another jar lists a second class that calls itself "refunds".
    Path twice = Files.createDirectories(root.resolve("twice"));
    Files.copy(good.resolve("payments.jar"), twice.resolve("payments.jar"));
    Files.copy(good.resolve("refunds.jar"), twice.resolve("refunds.jar"));
    jar(twice.resolve("refunds2.jar"), Map.of("acme.refund.RefundsV2", REFUNDS.formatted("RefundsV2")),
        Map.of(SERVICES, "acme.refund.RefundsV2\n"));
    assertThat(startFails("acme.pay.Payments", twice)).contains("the type 'refunds' is declared twice: by"
        + " acme.refund.Refunds listed by " + twice.resolve("refunds.jar") + " and by acme.refund.RefundsV2 listed by "
        + twice.resolve("refunds2.jar"));

    assertThat(startFails("acme.pay.Payments", root.resolve("nowhere"))).contains("'plugins.dir'", "nowhere",
        "does not exist");
  }

  @Test
  @DisplayName("the kfold process with a broken plugin exits non-zero, saying which class of which jar")
  void brokenPluginFailsTheProcess() throws Exception {
    String app = TestNodes.newApp("plugins-broken");
    Path data = root.resolve("data-" + app);
    Map<String, String> env = withTypes(TestNodes.env(app, data), data, """
        - name: payments
          class: acme.bad.Throwing
        """, null);
    env.put("KFOLD_PLUGINS_DIR", broken.toString());
    String java = ProcessHandle.current().info().command().orElse("java");
    ProcessBuilder builder = new ProcessBuilder(java, "-Xmx256m", "-cp", System.getProperty("java.class.path"),
        Main.class.getName()).redirectErrorStream(true);
    builder.environment().keySet().removeIf(name -> name.startsWith("KFOLD_"));
    builder.environment().putAll(env);
    Process process = builder.start();
    String output;
    try {
      output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      assertThat(process.waitFor(60, TimeUnit.SECONDS)).isTrue();
    } finally {
      process.destroyForcibly();
    }
    assertThat(process.exitValue()).as(output).isNotZero();
    assertThat(output).contains("kfold failed to start", "acme.bad.Throwing",
        broken.resolve("broken.jar").toString(), "no licence key");
  }

  /** Starts a node in this JVM of the shipped types and {@code className} as payments; answers why it failed. */
  private static String startFails(String className, Path pluginsDir) throws Exception {
    String app = TestNodes.newApp("plugins-bad");
    Path data = root.resolve("data-" + app);
    Map<String, String> env = withTypes(TestNodes.env(app, data), data, """
        - name: payments
          class: %s
        """.formatted(className), null);
    env.put("KFOLD_PLUGINS_DIR", pluginsDir.toString());
    NodeConfig config = NodeConfig.load(env);
    Throwable[] failure = new Throwable[1];
    assertThatThrownBy(() -> NodeRuntime.start(vertx, config).await(30, TimeUnit.SECONDS))
        .isInstanceOf(IllegalArgumentException.class)
        .satisfies(e -> failure[0] = e);
    return failure[0].getMessage();
  }

  /**
   * Adds to {@code env} a configuration file, in {@code dir}: the shipped one with {@code typesYaml}
   * after its types, and {@code viewsYaml} after its views.
   */
  private static Map<String, String> withTypes(Map<String, String> env, Path dir, String typesYaml, String viewsYaml)
      throws IOException {
    ObjectNode conf = (ObjectNode) YAML.readTree(Path.of("conf", "kfold.yaml").toFile());
    ((ArrayNode) conf.get("types")).addAll((ArrayNode) YAML.readTree(typesYaml));
    if (viewsYaml != null) {
      ((ArrayNode) conf.get("views")).addAll((ArrayNode) YAML.readTree(viewsYaml));
    }
    Files.createDirectories(dir);
    Path file = dir.resolve("kfold-plugins.yaml");
    YAML.writeValue(file.toFile(), conf);
    Map<String, String> withFile = new HashMap<>(env);
    withFile.put("KFOLD_CONFIG", file.toString());
    return withFile;
  }

  private static void jar(Path jar, Map<String, String> sources, Map<String, String> resources) throws IOException {
    PluginJars.build(jar, sources, resources);
  }

  private static HttpResponse<String> post(HttpClient http, String url, String body) throws Exception {
    return http.send(HttpRequest.newBuilder(URI.create(url)).header("content-type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
  }

  /** Polls until the body at {@code url} holds {@code expected}: a view is updated after the fold, not with it. */
  private static void awaitBody(HttpClient http, String url, String expected) throws Exception {
    long deadline = System.currentTimeMillis() + 30_000;
    String body = get(http, url).body();
    while (!body.contains(expected)) {
      assertThat(System.currentTimeMillis()).as("%s answers %s, not %s, after 30 s", url, body, expected)
          .isLessThan(deadline);
      Thread.sleep(50);
      body = get(http, url).body();
    }
  }

  private static HttpResponse<String> get(HttpClient http, String url) throws Exception {
    return http.send(HttpRequest.newBuilder(URI.create(url)).GET().build(), HttpResponse.BodyHandlers.ofString());
  }
}
