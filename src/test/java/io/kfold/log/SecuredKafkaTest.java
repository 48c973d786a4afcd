package io.kfold.log;

import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.Main;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.WebClient;
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

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * kfold on a secured cluster, configured through {@code kafka.properties} alone: a broker whose
 * only client listener is SASL_SSL (SCRAM-SHA-512 over TLS, a certificate made by the test). A node
 * starts, folds, serves and runs its worker through it; wrong credentials and an untrusted
 * certificate fail the start with a sentence that says which. No password reaches the logs.
 */
class SecuredKafkaTest {

  private static final String PASSWORD = "pw-7d1f-kfold-scram";
  private static final String WRONG_PASSWORD = "pw-91ac-not-the-one";
  /** Where Kafka logs each client's settings, a JAAS line among them (as "[hidden]"). */
  private static final String KAFKA_LOGGERS = "org.apache.kafka";

  private static Path dir;
  private static SaslSslBroker broker;
  private static Path passwordFile;
  private static final List<String> logged = new ArrayList<>();
  private static Runnable stopCapture;

  @BeforeAll
  static void startBroker() throws Exception {
    dir = TestNodes.tempDir("sasl-ssl");
    broker = SaslSslBroker.start(dir, PASSWORD);
    passwordFile = dir.resolve("kafka-password");
    Files.writeString(passwordFile, PASSWORD + "\n", StandardCharsets.UTF_8);
    stopCapture = captureLogs();
  }

  @AfterAll
  static void stopBroker() {
    if (stopCapture != null) {
      stopCapture.run();
    }
    if (broker != null) {
      broker.close();
    }
  }

  @Test
  @DisplayName("through SASL_SSL only, a node starts, folds commands, serves reads and runs its reaction worker")
  void nodeRunsOnTheSecuredCluster() throws Exception {
    String app = TestNodes.newApp("sasl");
    Path data = TestNodes.tempDir("sasl-node");
    // A user's file holds the settings, the password itself only as a reference to a file.
    Path file = data.resolve("kfold.yaml");
    Files.writeString(file, String.join("\n",
        "kafka:",
        "  properties:",
        "    security.protocol: SASL_SSL",
        "    sasl.mechanism: " + SaslSslBroker.MECHANISM,
        "    sasl.jaas.config: >-",
        "      org.apache.kafka.common.security.scram.ScramLoginModule required",
        "      username=\"" + SaslSslBroker.USER + "\" password=\"${file:" + passwordFile + "}\";",
        "    ssl.truststore.type: PEM",
        "    ssl.truststore.location: " + broker.trustedPem(),
        ""), StandardCharsets.UTF_8);
    Map<String, String> env = env(app, data);
    env.put("KFOLD_CONFIG", file.toString());
    NodeConfig config = NodeConfig.load(env);

    Vertx vertx = Vertx.vertx();
    WebClient client = WebClient.create(vertx);
    NodeRuntime node = TestNodes.startCaughtUp(vertx, config);
    try {
      String place = "{\"type\":\"place\",\"payload\":{\"customerEmail\":\"ada@example.com\","
          + "\"items\":[{\"sku\":\"book\",\"quantity\":1,\"price\":10}]}}";
      assertThat(call(client, node, HttpMethod.POST, "/v1/orders/s1/commands", place).status()).isEqualTo(200);
      assertThat(call(client, node, HttpMethod.POST, "/v1/orders/s1/commands",
          "{\"type\":\"pay\",\"payload\":{\"amount\":10}}").status()).isEqualTo(200);

      Reply order = call(client, node, HttpMethod.GET, "/v1/orders/s1?minVersion=2&timeoutMs=20000", null);
      assertThat(order.status()).isEqualTo(200);
      assertThat(order.body().path("version").asLong()).isEqualTo(2);
      assertThat(order.body().path("state").path("status").asText()).isEqualTo("paid");
      // The worker read the paid change and sent its command: both over the secured listener.
      Reply shipment = call(client, node, HttpMethod.GET, "/v1/shipments/s1?minVersion=1&timeoutMs=20000", null);
      assertThat(shipment.status()).isEqualTo(200);
      assertThat(shipment.body().path("state").path("order").asText()).isEqualTo("s1");
    } finally {
      client.close();
      node.stop().await(60, TimeUnit.SECONDS);
      vertx.close().await(30, TimeUnit.SECONDS);
    }
    // The capture did see Kafka's clients and their JAAS line, so that what it did not see means something.
    assertThat(loggedText()).contains("sasl.jaas.config = [hidden]").contains("security.protocol = SASL_SSL");
    assertNoPasswordLogged();
  }

  @Test
  @DisplayName("a wrong password fails the start within 30 s, saying that Kafka refused the credentials")
  void wrongPasswordFailsTheStart() throws Exception {
    Map<String, String> env = securedEnv(TestNodes.newApp("sasl-bad"), TestNodes.tempDir("sasl-bad"), broker.trustedPem());
    env.put("KAFKA_PASSWORD", WRONG_PASSWORD);
    String message = failedStart(NodeConfig.load(env));
    assertThat(message).startsWith("Kafka refused kfold's credentials (SASL authentication failed) at "
        + broker.bootstrap()).doesNotContain(WRONG_PASSWORD).doesNotContain(PASSWORD);
    assertNoPasswordLogged();
  }

  @Test
  @DisplayName("a broker certificate that kfold does not trust fails the start within 30 s, saying so")
  void untrustedCertificateFailsTheStart() throws Exception {
    Map<String, String> env = securedEnv(TestNodes.newApp("sasl-tls"), TestNodes.tempDir("sasl-tls"),
        broker.untrustedPem());
    env.put("KAFKA_PASSWORD", PASSWORD);
    String message = failedStart(NodeConfig.load(env));
    assertThat(message).startsWith("TLS handshake with Kafka at " + broker.bootstrap()
        + " failed: the broker's certificate is not trusted").doesNotContain(PASSWORD);
    assertNoPasswordLogged();
  }

  @Test
  @DisplayName("a truststore file that is not there fails the start, naming it")
  void missingTruststoreFailsTheStart() throws Exception {
    Path missing = dir.resolve("no-such-ca.pem");
    Map<String, String> env = securedEnv(TestNodes.newApp("sasl-nots"), TestNodes.tempDir("sasl-nots"), missing);
    env.put("KAFKA_PASSWORD", PASSWORD);
    String message = failedStart(NodeConfig.load(env));
    assertThat(message).startsWith("cannot set up a Kafka client for " + broker.bootstrap() + " from kafka.properties: ")
        .contains(missing.toString()).doesNotContain(PASSWORD);
  }

  @Test
  @DisplayName("java kfold with a wrong password prints why and exits non-zero within 30 s, the password masked")
  void mainExitsWithTheReason() throws Exception {
    Path data = TestNodes.tempDir("sasl-main");
    Map<String, String> env = securedEnv(TestNodes.newApp("sasl-main"), data, broker.trustedPem());
    env.put("KAFKA_PASSWORD", WRONG_PASSWORD);
    Path log = data.resolve("kfold.log");
    String java = ProcessHandle.current().info().command().orElse("java");
    ProcessBuilder builder = new ProcessBuilder(java, "-Xmx256m", "-cp", System.getProperty("java.class.path"),
        Main.class.getName())
        .redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
    builder.environment().putAll(env);
    Process process = builder.start();
    try {
      assertThat(process.waitFor(30, TimeUnit.SECONDS)).as("kfold exits within 30 s; see %s", log).isTrue();
    } finally {
      process.destroyForcibly();
    }
    String output = Files.readString(log, StandardCharsets.UTF_8);
    assertThat(process.exitValue()).as("exit status; output:\n%s", output).isNotZero();
    assertThat(output).contains("kfold failed to start: Kafka refused kfold's credentials (SASL authentication failed) at "
        + broker.bootstrap());
    assertThat(output).as("the effective configuration, logged at start").contains("sasl.jaas.config: " + "<masked>");
    assertThat(output).doesNotContain(WRONG_PASSWORD).doesNotContain(PASSWORD);
    assertThat(output).as("a sentence, not a stack trace").doesNotContain("\tat ");
  }

  /** The start's failure, within 30 s: its message. */
  private static String failedStart(NodeConfig config) throws Exception {
    Vertx vertx = Vertx.vertx();
    try {
      Future<NodeRuntime> start = NodeRuntime.start(vertx, config);
      Throwable failure;
      try {
        NodeRuntime node = start.await(30, TimeUnit.SECONDS);
        node.stop().await(60, TimeUnit.SECONDS);
        throw new AssertionError("the node started");
      } catch (java.util.concurrent.TimeoutException e) {
        throw new AssertionError("the start neither failed nor succeeded within 30 s", e);
      } catch (AssertionError e) {
        throw e;
      } catch (Exception e) {
        failure = e;
      }
      assertThat(failure).as("the start's failure").isInstanceOf(KafkaCheck.Failed.class);
      return failure.getMessage();
    } finally {
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  private static Map<String, String> env(String app, Path data) {
    Map<String, String> env = new HashMap<>();
    env.put("KFOLD_APP", app);
    env.put("KFOLD_DATA_DIR", data.toString());
    env.put("KFOLD_HTTP_PORT", "0");
    env.put("KFOLD_KAFKA_BOOTSTRAP", broker.bootstrap());
    return env;
  }

  /** The settings as variables, in the Kafka image's style; the password from the variable KAFKA_PASSWORD. */
  private static Map<String, String> securedEnv(String app, Path data, Path truststore) {
    Map<String, String> env = env(app, data);
    env.put("KFOLD_KAFKA_PROPERTIES_SECURITY_PROTOCOL", "SASL_SSL");
    env.put("KFOLD_KAFKA_PROPERTIES_SASL_MECHANISM", SaslSslBroker.MECHANISM);
    env.put("KFOLD_KAFKA_PROPERTIES_SASL_JAAS_CONFIG", "org.apache.kafka.common.security.scram.ScramLoginModule required "
        + "username=\"" + SaslSslBroker.USER + "\" password=\"${env:KAFKA_PASSWORD}\";");
    env.put("KFOLD_KAFKA_PROPERTIES_SSL_TRUSTSTORE_TYPE", "PEM");
    env.put("KFOLD_KAFKA_PROPERTIES_SSL_TRUSTSTORE_LOCATION", truststore.toString());
    return env;
  }

  private static Reply call(WebClient client, NodeRuntime node, HttpMethod method, String path, String body) throws Exception {
    return TestNodes.call(client, method, node.httpPort(), path, body, Map.of());
  }

  private static void assertNoPasswordLogged() {
    assertThat(loggedText()).as("what kfold and Kafka logged").isNotEmpty()
        .doesNotContain(PASSWORD).doesNotContain(WRONG_PASSWORD);
  }

  private static String loggedText() {
    synchronized (logged) {
      return String.join("\n", logged);
    }
  }

  /**
   * Keeps every line logged in this JVM, with its exception's stack, from kfold (INFO and up) and
   * from Kafka's clients (INFO, where each client logs its settings; only warnings reach the console).
   */
  private static Runnable captureLogs() {
    LoggerContext context = (LoggerContext) LogManager.getContext(false);
    Configuration configuration = context.getConfiguration();
    AbstractAppender appender = new AbstractAppender("secured-kafka-capture", null, null, true, Property.EMPTY_ARRAY) {
      @Override
      public void append(LogEvent event) {
        StringBuilder line = new StringBuilder(event.getMessage().getFormattedMessage());
        if (event.getThrown() != null) {
          StringWriter stack = new StringWriter();
          event.getThrown().printStackTrace(new PrintWriter(stack));
          line.append('\n').append(stack);
        }
        synchronized (logged) {
          logged.add(line.toString());
        }
      }
    };
    appender.start();
    configuration.addAppender(appender);
    configuration.getRootLogger().addAppender(appender, Level.INFO, null);
    LoggerConfig before = configuration.getLoggers().get(KAFKA_LOGGERS);
    LoggerConfig kafka = new LoggerConfig(KAFKA_LOGGERS, Level.INFO, false);
    kafka.addAppender(appender, Level.INFO, null);
    kafka.addAppender(configuration.getAppender("out"), Level.WARN, null);
    // Replaced, not added to: the configuration keeps the first logger of a name it is given.
    configuration.removeLogger(KAFKA_LOGGERS);
    configuration.addLogger(KAFKA_LOGGERS, kafka);
    context.updateLoggers();
    return () -> {
      configuration.removeLogger(KAFKA_LOGGERS);
      if (before != null) {
        configuration.addLogger(KAFKA_LOGGERS, before);
      }
      configuration.getRootLogger().removeAppender(appender.getName());
      context.updateLoggers();
      appender.stop();
    };
  }
}
