package io.kfold.image;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kfold.Installed;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.Callable;
import java.util.function.Supplier;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * docker/Dockerfile built and run for real, with podman: two kfold containers and a Kafka broker in
 * containers on a network of their own, as an operator runs them. The base image is made from
 * Debian's packages (docker/debian-base.sh, once: no registry is needed), and the image copies
 * target/kfold-linux.jar, so this runs after {@code package} (the pom runs it at
 * {@code integration-test}). Skipped only where podman is not installed.
 */
class ContainerImageTest {

  private static final String BASE = "localhost/debian-jre:17";
  private static final String SUFFIX = UUID.randomUUID().toString().substring(0, 8);
  private static final String IMAGE = "localhost/kfold-image-test:" + SUFFIX;
  private static final String NETWORK = "kfold-it-" + SUFFIX;
  private static final String SECRETS = "kfold-it-secrets-" + SUFFIX;
  private static final String BROKER = "kafka-" + SUFFIX;
  /** Within the grace period `podman stop` gives before SIGKILL: a handover takes seconds. */
  private static final int GRACE_SECONDS = 60;
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

  private static final List<String> containers = new ArrayList<>();

  @BeforeAll
  static void podmanInstalled() {
    Assumptions.assumeTrue(Installed.program("podman") != null, "podman is not installed");
  }

  @AfterAll
  static void removeEverything() throws Exception {
    if (Installed.program("podman") == null) {
      return;
    }
    for (String container : containers) {
      run(60, "podman", "rm", "-f", "-v", "-t", "0", container);  // -v: the data volume too
    }
    run(60, "podman", "network", "rm", "-f", NETWORK);
    run(60, "podman", "volume", "rm", "-f", SECRETS);
    run(60, "podman", "rmi", "-f", IMAGE);
  }

  @Test
  @DisplayName("the image runs as its own user against a broker on a podman network, answers /ready (its"
      + " HEALTHCHECK too) and a write forwarded between two containers by their advertised names,"
      + " sizes its memory from the container's limit, and stops cleanly on SIGTERM")
  void imageRunsForReal() throws Exception {
    long started = System.nanoTime();
    Path jar = Path.of("target", "kfold-linux.jar");
    assertThat(jar).as("the Linux jar the image copies: build it with mvn package first").exists();
    ok(900, "docker/debian-base.sh", BASE);
    ok(600, "podman", "build", "--format", "docker", "-f", "docker/Dockerfile", "--build-arg", "BASE_IMAGE=" + BASE,
        "-t", IMAGE, ".");
    ok(60, "podman", "network", "create", NETWORK);

    startBroker();

    // The compose file's secrets service: the image's script, as the image's user, into a volume.
    ok(60, "podman", "volume", "create", SECRETS);
    ok(120, "podman", "run", "--rm", "-v", SECRETS + ":/run/kfold", "--entrypoint", "sh", IMAGE,
        "/opt/kfold/docker/make-secrets.sh", "/run/kfold");

    String app = "image-" + SUFFIX;
    Node one = startNode("kfold-1-" + SUFFIX, app);
    // The second logs JSON: the runnable jar must find the JSON layout's plugins (shading merges them).
    Node two = startNode("kfold-2-" + SUFFIX, app, "KFOLD_LOG_FORMAT=json");
    String key = ok(30, "podman", "exec", one.name, "cat", "/run/kfold/admin.key").trim();
    Map<String, String> admin = Map.of("Authorization", "Bearer " + key);
    // Compose's Prometheus reads the key as a member of the image user's group.
    assertThat(ok(30, "podman", "exec", one.name, "stat", "-c", "%a %u", "/run/kfold/admin.key").trim())
        .isEqualTo("640 10001");

    for (Node node : List.of(one, two)) {
      await(Duration.ofSeconds(180), () -> status(node, "/ready") == 200 ? true : null,
          () -> node.name + " answers /ready; its log:\n" + logs(node.name));
      // Process 1 is java (exec'd by the entrypoint), running as the image's user, not root.
      String status = ok(30, "podman", "exec", node.name, "cat", "/proc/1/status");
      assertThat(status).containsPattern("(?m)^Uid:\\s+10001\\s");
      assertThat(ok(30, "podman", "exec", node.name, "id", "-u").trim()).isEqualTo("10001");
      assertThat(ok(30, "podman", "exec", node.name, "cat", "/proc/1/cmdline")).startsWith("java");
      // 640 MiB: the heap 40 % of it, the store 25 % (160 MiB), outside the heap.
      assertThat(ok(30, "podman", "exec", node.name, "cat", "/proc/1/cmdline").replace('\0', ' '))
          .contains("-XX:MaxRAMPercentage=40");
      assertThat(ok(30, "podman", "exec", node.name, "cat", "/proc/1/environ").split("\0"))
          .contains("KFOLD_STORE_MEMORY_MB=160");
      // The image's HEALTHCHECK, run as the engine runs it.
      assertThat(run(60, "podman", "healthcheck", "run", node.name).exit).as("%s's HEALTHCHECK", node.name).isZero();
    }
    assertThat(status(one, "/v1/_cluster")).as("the API needs a key").isEqualTo(401);

    // Both nodes fold partitions; then a write through node 1 of an entity node 2 folds.
    await(Duration.ofSeconds(120), () -> {
      JsonNode cluster = JSON.readTree(call(one, "GET", "/v1/_cluster", null, admin).body());
      return cluster.path("nodes").path(two.member).path("partitions").size() > 0
          && cluster.path("nodes").path(one.member).path("partitions").size() > 0 ? true : null;
    }, () -> "both nodes fold partitions");
    String entity = null;
    for (int i = 0; entity == null && i < 200; i++) {
      String id = "image-" + i;
      // 503 while a partition moves between the nodes: asked again.
      HttpResponse<String> written = await(Duration.ofSeconds(60), () -> {
        HttpResponse<String> answer = call(one, "POST", "/v1/users/" + id + "/events",
            "{\"events\":[{\"type\":\"Registered\",\"payload\":{\"name\":\"" + id + "\"}}]}", admin);
        return answer.statusCode() == 503 ? null : answer;
      }, () -> "a write of " + id + " through node 1 answers other than 503");
      assertThat(written.statusCode()).as(written.body()).isEqualTo(200);
      if (written.headers().firstValue("Kfold-Node").orElse("").equals(two.member)) {
        entity = id;
      }
    }
    assertThat(entity).as("an entity folded by node 2, written through node 1").isNotNull();
    for (Node node : List.of(one, two)) {
      HttpResponse<String> read = call(node, "GET", "/v1/users/" + entity, null, admin);
      assertThat(read.statusCode()).as(read.body()).isEqualTo(200);
      assertThat(read.headers().firstValue("Kfold-Node")).contains(two.member);
      assertThat(JSON.readTree(read.body()).path("state").path("name").asText()).isEqualTo(entity);
    }

    // SIGTERM (podman stop), then SIGKILL only after the grace period: kfold hands over and exits.
    for (Node node : List.of(two, one)) {
      ok(GRACE_SECONDS + 60, "podman", "stop", "-t", Integer.toString(GRACE_SECONDS), node.name);
      String exit = ok(30, "podman", "inspect", "-f", "{{.State.ExitCode}}", node.name).trim();
      String log = logs(node.name);
      assertThat(exit).as("%s's exit code (137 is a SIGKILL after the grace period); its log:\n%s", node.name, log)
          .isIn("0", "143");
      assertThat(log).as("%s stopped cleanly", node.name).contains("stopping kfold", "kfold stopped");
    }
    List<String> lines = logs(two.name).lines().filter(line -> !line.isBlank()).toList();
    for (String line : lines) {
      assertThat(JSON.readTree(line).path("message").isTextual()).as("a JSON log line with a message: %s", line).isTrue();
    }
    assertThat(lines).anyMatch(line -> line.contains("ready at http://" + two.name + ":8080"));
    System.out.printf("image check took %d s%n", TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - started));
  }

  /** A node: its container's name (also its host name on the network) and its name in the group. */
  private record Node(String name, String member, int port) {
  }

  private static Node startNode(String name, String app, String... env) throws Exception {
    String member = name.substring(0, "kfold-1".length());
    containers.add(name);
    List<String> command = new ArrayList<>(List.of("podman", "run", "-d", "--name", name, "--network", NETWORK,
        "--memory", "640m", "-p", "127.0.0.1::8080"));
    for (String variable : env) {
      command.addAll(List.of("-e", variable));
    }
    command.addAll(List.of(
        "-v", SECRETS + ":/run/kfold:ro",
        "-e", "KFOLD_APP=" + app,
        "-e", "KFOLD_KAFKA_BOOTSTRAP=" + BROKER + ":9092",
        "-e", "KFOLD_KAFKA_GROUP_INSTANCE_ID=" + member,
        "-e", "KFOLD_HTTP_ADVERTISED_URL=http://" + name + ":8080",
        "-e", "KFOLD_AUTH_MODE=api-keys",
        "-e", "KFOLD_AUTH_CLUSTER_SECRET=${file:/run/kfold/cluster-secret}",
        "-e", "KFOLD_AUTH_API_KEYS_FILE=/run/kfold/api-keys.yaml",
        // A node lives for a minute here: the optimizing compiler would only slow its start.
        "-e", "JAVA_OPTS=-XX:TieredStopAtLevel=1",
        IMAGE));
    ok(120, command.toArray(String[]::new));
    String published = ok(30, "podman", "port", name, "8080").trim();
    return new Node(name, member, Integer.parseInt(published.substring(published.lastIndexOf(':') + 1)));
  }

  /**
   * The broker kfold's tests use (target/kafka-broker's jars, KRaft, one node), in a container of
   * the same base on the network, advertised by its container name.
   */
  private static void startBroker() throws Exception {
    Path dir = Files.createTempDirectory("kfold-image-broker");
    Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
    Files.writeString(dir.resolve("server.properties"), String.join("\n",
        "process.roles=broker,controller",
        "node.id=1",
        "controller.quorum.voters=1@localhost:9093",
        "listeners=PLAINTEXT://:9092,CONTROLLER://localhost:9093",
        "advertised.listeners=PLAINTEXT://" + BROKER + ":9092",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs=/tmp/kafka-data",
        "auto.create.topics.enable=false",
        "offsets.topic.replication.factor=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        ""));
    Files.writeString(dir.resolve("log4j2.properties"), String.join("\n",
        "rootLogger.level=WARN",
        "rootLogger.appenderRef.out.ref=out",
        "appender.out.type=Console",
        "appender.out.name=out",
        "appender.out.layout.type=PatternLayout",
        "appender.out.layout.pattern=[%d] %p %m (%c)%n",
        "logger.started.name=kafka.server.KafkaRaftServer",
        "logger.started.level=INFO",
        ""));
    String java = "java -Xms128m -Xmx320m -XX:TieredStopAtLevel=1 -Dlog4j2.configurationFile=/etc/broker/log4j2.properties"
        + " -cp '/opt/kafka-broker/*'";
    containers.add(BROKER);
    ok(120, "podman", "run", "-d", "--name", BROKER, "--network", NETWORK,
        "-v", Path.of("target", "kafka-broker").toAbsolutePath() + ":/opt/kafka-broker:ro",
        "-v", dir + ":/etc/broker:ro",
        BASE, "bash", "-c",
        java + " kafka.tools.StorageTool format -t " + clusterId() + " -c /etc/broker/server.properties"
            + " && exec " + java + " kafka.Kafka /etc/broker/server.properties");
    await(Duration.ofSeconds(120), () -> logs(BROKER).contains("Kafka Server started") ? true : null,
        () -> "the broker starts; its log:\n" + logs(BROKER));
  }

  /**
   * Asks {@code value} every half second until it answers non-null (each ask starts a podman command
   * or a request: no need to ask more often), and answers it; fails with {@code what} after {@code within}.
   */
  private static <T> T await(Duration within, Callable<T> value, Supplier<String> what) throws Exception {
    long deadline = System.nanoTime() + within.toNanos();
    while (true) {
      T answer = value.call();
      if (answer != null) {
        return answer;
      }
      if (System.nanoTime() > deadline) {
        throw new AssertionError("not within " + within.toSeconds() + " s: " + what.get());
      }
      Thread.sleep(500);
    }
  }

  private static String clusterId() {
    byte[] bytes = new byte[16];
    new java.security.SecureRandom().nextBytes(bytes);
    bytes[0] &= 0x7f;  // base64 of a first byte < 0x80 starts A-f, never '-'
    return java.util.Base64.getUrlEncoder().withoutPadding().encodeToString(bytes);
  }

  private static int status(Node node, String path) {
    try {
      return call(node, "GET", path, null, Map.of()).statusCode();
    } catch (IOException e) {
      return -1;
    }
  }

  private static HttpResponse<String> call(Node node, String method, String path, String body, Map<String, String> headers)
      throws IOException {
    HttpRequest.Builder request = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + node.port + path))
        .timeout(Duration.ofSeconds(30))
        .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
    if (body != null) {
      request.header("content-type", "application/json");
    }
    headers.forEach(request::header);
    try {
      return HTTP.send(request.build(), HttpResponse.BodyHandlers.ofString());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException(e);
    }
  }

  private static String logs(String container) {
    try {
      return run(30, "podman", "logs", container).output;
    } catch (Exception e) {
      return "(no log: " + e + ")";
    }
  }

  private record Result(int exit, String output) {
  }

  /** Runs a command to its end (its output and errors together); the test fails if it does not succeed. */
  private static String ok(int timeoutSeconds, String... command) throws Exception {
    Result result = run(timeoutSeconds, command);
    assertThat(result.exit).as("%s:\n%s", String.join(" ", command), result.output).isZero();
    return result.output;
  }

  private static Result run(int timeoutSeconds, String... command) throws Exception {
    Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
    // Read while it runs: a full pipe would stall a chatty command (podman build).
    var output = java.util.concurrent.CompletableFuture.supplyAsync(() -> {
      try {
        return new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      } catch (IOException e) {
        return "(output unreadable: " + e + ")";
      }
    });
    if (!process.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      throw new AssertionError(String.join(" ", command) + " did not end within " + timeoutSeconds + " s");
    }
    return new Result(process.exitValue(), output.get(10, TimeUnit.SECONDS));
  }

}
