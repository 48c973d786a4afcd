package io.kfold;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.query.Position;
import io.kfold.types.Envelopes;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import io.vertx.core.buffer.Buffer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.ByteArraySerializer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

/** Helpers to run kfold nodes against the test broker, each test with an application id of its own. */
public final class TestNodes {

  private TestNodes() {}

  /** A fresh application id, so that each test has topics and a consumer group of its own. */
  public static String newApp(String name) {
    return "t-" + name + "-" + UUID.randomUUID().toString().substring(0, 8);
  }

  /** The environment a node of {@code app} reads, on the test broker, with a free HTTP port. */
  public static Map<String, String> env(String app, Path dataDir) {
    Map<String, String> env = new HashMap<>();
    env.put("KFOLD_APP", app);
    env.put("KFOLD_DATA_DIR", dataDir.toString());
    env.put("KFOLD_HTTP_PORT", "0");
    env.put("KFOLD_KAFKA_BOOTSTRAP", TestBroker.bootstrap());
    return env;
  }

  public static NodeConfig config(String app, Path dataDir) {
    return NodeConfig.load(env(app, dataDir));
  }

  /**
   * Adds to {@code env} a short session timeout for tests whose nodes join a group others are in:
   * members heartbeat every sixth of it, and they hear of a rebalance at their next heartbeat, so a
   * join is taken up within a second instead of the 7.5 s of the default 45 s. Answers {@code env}.
   */
  public static Map<String, String> quickRebalances(Map<String, String> env) {
    env.put("KFOLD_KAFKA_SESSION_TIMEOUT_MS", "6000");
    return env;
  }

  /** As {@link #config}, with {@link #quickRebalances}. */
  public static NodeConfig quickRebalancesConfig(String app, Path dataDir) {
    return NodeConfig.load(quickRebalances(env(app, dataDir)));
  }

  /**
   * The environment of a node whose side-effect workers are those of {@code effectsYaml} (the body
   * of an {@code effects:} section) instead of the default ones: a configuration file is written
   * to the data folder and named by KFOLD_CONFIG.
   */
  public static Map<String, String> envWithEffects(String app, Path dataDir, String effectsYaml) {
    return withEffects(env(app, dataDir), dataDir, effectsYaml);
  }

  /** Adds to {@code env} a configuration file, in {@code dir}, whose workers are those of {@code effectsYaml}. */
  public static Map<String, String> withEffects(Map<String, String> env, Path dir, String effectsYaml) {
    return withSection(env, dir, "effects", effectsYaml);
  }

  /**
   * Adds to {@code env} a configuration file, in {@code dir}, that is the shipped one with its
   * section {@code name} replaced by {@code sectionYaml}.
   */
  public static Map<String, String> withSection(Map<String, String> env, Path dir, String name, String sectionYaml) {
    try {
      ObjectMapper yaml = new ObjectMapper(new YAMLFactory());
      ObjectNode conf = (ObjectNode) yaml.readTree(Path.of("conf", "kfold.yaml").toFile());
      conf.set(name, yaml.readTree(sectionYaml));
      Path file = dir.resolve("kfold-test.yaml");
      Files.createDirectories(dir);
      yaml.writeValue(file.toFile(), conf);
      Map<String, String> withFile = new HashMap<>(env);
      withFile.put("KFOLD_CONFIG", file.toString());
      return withFile;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * The partitions a node of the shipped configuration folds: those of every type and every view
   * (a view's rows are folded like a type's entities).
   */
  public static final int SHIPPED_PARTITIONS = shippedPartitions();

  private static int shippedPartitions() {
    try {
      JsonNode conf = new ObjectMapper(new YAMLFactory()).readTree(Path.of("conf", "kfold.yaml").toFile());
      return (conf.path("types").size() + conf.path("views").size()) * conf.path("kafka").path("partitions").asInt();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** How a test reads a node's {@code /v1/_cluster} (with its credentials, over its transport). */
  public interface ClusterOf {
    JsonNode of(NodeRuntime node) throws Exception;
  }

  /**
   * Whether two nodes share every partition, both caught up, and each one's {@code /v1/_cluster}
   * shows both of them with every partition claimed: forwarding between them can be tested.
   */
  public static boolean splitAndKnown(NodeRuntime a, NodeRuntime b, ClusterOf clusterOf) throws Exception {
    if (!a.progress().caughtUp() || !b.progress().caughtUp() || a.progress().lag().isEmpty() || b.progress().lag().isEmpty()
        || a.progress().lag().size() + b.progress().lag().size() != SHIPPED_PARTITIONS) {
      return false;
    }
    for (NodeRuntime node : List.of(a, b)) {
      JsonNode cluster = clusterOf.of(node);
      Set<String> claimed = new HashSet<>();
      cluster.path("nodes").forEach(n -> n.path("partitions").forEach(p -> claimed.add(p.asText())));
      if (cluster.path("nodes").size() != 2 || claimed.size() != SHIPPED_PARTITIONS) {
        return false;
      }
    }
    return true;
  }

  /** Starts a node in this JVM and waits until it has folded everything its partitions hold. */
  public static NodeRuntime startCaughtUp(Vertx vertx, NodeConfig config) throws Exception {
    NodeRuntime node = NodeRuntime.start(vertx, config).await(60, TimeUnit.SECONDS);
    awaitCaughtUp(node);
    return node;
  }

  public static void awaitCaughtUp(NodeRuntime node) throws InterruptedException {
    long deadline = System.currentTimeMillis() + 60_000;
    while (!node.progress().caughtUp()) {
      if (System.currentTimeMillis() > deadline) {
        throw new AssertionError("node not caught up after 60 s; lag " + node.progress().lag());
      }
      Thread.sleep(50);
    }
  }

  /** The SHA-256 of {@code text} in hex: what the configuration keeps of an API key. */
  public static String sha256(String text) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * Waits until the node answering on {@code port} has folded each partition of {@code topic}, the
   * events topic of {@code type}, up to {@code endOffsets} (partition → the offset after its last
   * record): a query at the position of each partition's last record, asked again while it answers
   * 503 or 504. Readiness does not say as much: a node is ready once it has read each of its
   * partitions to its end once, and records written after that may still wait to be folded.
   */
  public static void awaitFolded(int port, String type, String topic, Map<Integer, Long> endOffsets, Duration within)
      throws Exception {
    java.net.http.HttpClient http = java.net.http.HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
    long deadline = System.currentTimeMillis() + within.toMillis();
    for (Map.Entry<Integer, Long> partition : endOffsets.entrySet()) {
      if (partition.getValue() == 0) {
        continue;
      }
      String token = new Position(topic, partition.getKey(), partition.getValue() - 1).token();
      String path = "/v1/" + type + "?limit=1&fields=key&timeoutMs=10000&minPosition="
          + URLEncoder.encode(token, StandardCharsets.UTF_8);
      while (true) {
        java.net.http.HttpResponse<String> answer = http.send(java.net.http.HttpRequest.newBuilder(
            URI.create("http://127.0.0.1:" + port + path)).timeout(Duration.ofSeconds(30)).build(),
            java.net.http.HttpResponse.BodyHandlers.ofString());
        if (answer.statusCode() == 200) {
          break;
        }
        if (answer.statusCode() != 503 && answer.statusCode() != 504) {
          throw new AssertionError("GET " + path + " answered " + answer.statusCode() + " " + answer.body());
        }
        if (System.currentTimeMillis() > deadline) {
          throw new AssertionError("partition " + partition.getKey() + " of " + topic + " not folded to offset "
              + partition.getValue() + " within " + within + "; last answer " + answer.statusCode() + " " + answer.body());
        }
        Thread.sleep(50);
      }
    }
  }

  /** A plain producer, as an outside application would use. */
  public static KafkaProducer<byte[], byte[]> plainProducer() {
    Map<String, Object> conf = new HashMap<>();
    conf.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, TestBroker.bootstrap());
    conf.put(ProducerConfig.ACKS_CONFIG, "all");
    conf.put(ProducerConfig.LINGER_MS_CONFIG, 5);
    conf.put(ProducerConfig.BATCH_SIZE_CONFIG, 256 * 1024);
    return new KafkaProducer<>(conf, new ByteArraySerializer(), new ByteArraySerializer());
  }

  public static Path tempDir(String name) {
    try {
      return Files.createTempDirectory("kfold-" + name);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * A handler for a Server-Sent Events body: adds each complete frame to {@code frames}, in order,
   * leaving out comments (keep-alives). Frames may span chunks, and a chunk may hold several.
   */
  public static Handler<Buffer> sseFrames(List<String> frames) {
    StringBuilder pending = new StringBuilder();
    return chunk -> {
      synchronized (pending) {
        pending.append(chunk.toString(StandardCharsets.UTF_8));
        int end;
        while ((end = pending.indexOf("\n\n")) >= 0) {
          String frame = pending.substring(0, end);
          pending.delete(0, end + 2);
          if (!frame.startsWith(":")) {
            frames.add(frame);
          }
        }
      }
    };
  }

  /**
   * Opens a change stream whose frames go to {@code frames}. The handler is set as the head arrives,
   * on the connection's event loop, before the next chunk is read: a listener added to the answer of
   * {@code send()} from the test thread may come after the first frames, which are then lost.
   */
  public static Future<HttpClientResponse> openStream(HttpClient http, RequestOptions options, List<String> frames) {
    return http.request(options).compose(request -> {
      Future<HttpClientResponse> response = request.response().map(sse -> sse.handler(sseFrames(frames)));
      request.end();
      return response;
    });
  }

  /** A blocking HTTP call for test code: status, parsed body, and every header of the answer. */
  public record Reply(int status, String contentType, String etag, JsonNode body, MultiMap headers) {

    /** The value of a header of the answer, null without it. */
    public String header(String name) {
      return headers.get(name);
    }
  }

  public static Reply call(WebClient client, HttpMethod method, int port, String path, String body,
                           Map<String, String> headers) throws Exception {
    var request = client.request(method, port, "127.0.0.1", path);
    headers.forEach(request::putHeader);
    HttpResponse<Buffer> response = (body == null ? request.send() : request.sendBuffer(Buffer.buffer(body)))
        .await(30, TimeUnit.SECONDS);
    Buffer raw = response.body();
    JsonNode json = raw == null || raw.length() == 0 ? null : Envelopes.parse(raw.getBytes());
    return new Reply(response.statusCode(), response.getHeader("content-type"), response.getHeader("ETag"), json,
        response.headers());
  }
}
