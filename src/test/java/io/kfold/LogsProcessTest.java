package io.kfold;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.node.NodeRuntime;
import io.kfold.types.Envelopes;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.jar.Attributes;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.jar.Manifest;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/** kfold's logs as an operator gets them from its process: JSON by a switch, the start-up line, its version. */
@ExtendWith(TestBroker.class)
class LogsProcessTest {

  private static final String API_KEY = "kf-test-key-0123456789abcdef";
  private static final String CLUSTER_SECRET = "cluster-secret-fedcba9876543210";

  @Test
  @DisplayName("KFOLD_LOG_FORMAT=json: every line of the process's output is a JSON object with level, logger and"
      + " message; the start-up line says the version, types, workers, URL and node; no secret, no warning is logged")
  void jsonLogs() throws Exception {
    String app = TestNodes.newApp("logs");
    Path dir = TestNodes.tempDir("logs");
    Path config = dir.resolve("kfold.yaml");
    Files.writeString(config, "auth:\n"
        + "  mode: api-keys\n"
        + "  apiKeys:\n"
        + "    ops: {sha256: " + TestNodes.sha256(API_KEY) + ", roles: [read, write, admin]}\n"
        + "  clusterSecret: \"" + CLUSTER_SECRET + "\"\n");
    Map<String, String> env = TestNodes.env(app, dir);
    env.put("KFOLD_CONFIG", config.toString());
    env.put("KFOLD_LOG_FORMAT", "json");
    env.put("KFOLD_HTTP_ACCESS_LOG", "true");
    // The runnable jar's logging configuration, which the process would otherwise not use (tests have their own).
    env.put("LOG4J_CONFIGURATION_FILE", Path.of("src/runnable/log4j2.properties").toAbsolutePath().toString());
    Path log = dir.resolve("kfold.log");
    KfoldProcess kfold = new KfoldProcess(env, log);
    try {
      kfold.start();
      String ready = awaitMessage(log, "kfold dev ready at ");
      assertThat(ready).isEqualTo("kfold dev ready at http://127.0.0.1:" + kfold.port() + ": types orders, shipments, users;"
          + " workers shipment-request; node " + app + "-" + Files.readString(dir.resolve("node-id")).trim());

      HttpResponse<String> answer = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
              URI.create("http://127.0.0.1:" + kfold.port() + "/v1/users/nobody?token=" + API_KEY))
          .header("Authorization", "Bearer " + API_KEY).header("X-Correlation-Id", "json-1").build(),
          HttpResponse.BodyHandlers.ofString());
      assertThat(answer.statusCode()).as(answer.body()).isEqualTo(404);
      String access = awaitMessage(log, "GET /v1/:type/:id /v1/users/nobody 404 ");
      assertThat(access).contains("correlationId=json-1");
    } finally {
      kfold.stopIfAlive();
    }
    List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
    assertThat(lines).hasSizeGreaterThan(3);
    for (String line : lines) {
      JsonNode json = parse(line);
      assertThat(json.isObject()).as(line).isTrue();
      assertThat(json.path("log.level").asText()).as(line).isIn("DEBUG", "INFO", "WARN", "ERROR");
      assertThat(json.path("log.logger").asText()).as(line).isNotBlank();
      assertThat(json.has("message")).as(line).isTrue();
    }
    assertThat(lines).as("the start-up line, once").filteredOn(line -> line.contains("kfold dev ready at")).hasSize(1);
    // A start, a request and a stop that went well: nothing an operator would have to look into.
    assertThat(lines).as("warnings and errors of a run without trouble")
        .filteredOn(line -> Set.of("WARN", "ERROR").contains(parse(line).path("log.level").asText())).isEmpty();
    assertThat(String.join("\n", lines)).doesNotContain(API_KEY).doesNotContain(CLUSTER_SECRET);
  }

  @Test
  @DisplayName("--version prints the Implementation-Version of kfold's jar, \"dev\" from classes, and exits 0")
  void version() throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    int status = Main.command(new String[] {"--version"}, Map.of(), new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(OutputStream.nullOutputStream()));
    assertThat(status).isZero();
    assertThat(out.toString(StandardCharsets.UTF_8).trim()).isEqualTo("kfold dev");

    // kfold's classes in a jar whose manifest says a version, as the build writes it, ahead of the classes on the
    // class path: the test does not need the packaged jar.
    Path classes = Path.of(NodeRuntime.class.getProtectionDomain().getCodeSource().getLocation().toURI());
    Path jar = TestNodes.tempDir("version").resolve("kfold.jar");
    Manifest manifest = new Manifest();
    manifest.getMainAttributes().put(Attributes.Name.MANIFEST_VERSION, "1.0");
    manifest.getMainAttributes().put(Attributes.Name.IMPLEMENTATION_VERSION, "9.8.7-test");
    try (JarOutputStream out2 = new JarOutputStream(Files.newOutputStream(jar), manifest);
         Stream<Path> files = Files.walk(classes)) {
      for (Path file : files.filter(Files::isRegularFile).toList()) {
        out2.putNextEntry(new JarEntry(classes.relativize(file).toString().replace('\\', '/')));
        Files.copy(file, out2);
        out2.closeEntry();
      }
    }
    String java = ProcessHandle.current().info().command().orElse("java");
    Process process = new ProcessBuilder(java, "-XX:TieredStopAtLevel=1", "-cp",
        jar + File.pathSeparator + System.getProperty("java.class.path"), Main.class.getName(), "--version")
        .redirectErrorStream(true).start();
    String printed = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(process.waitFor(60, TimeUnit.SECONDS)).isTrue();
    assertThat(process.exitValue()).as(printed).isZero();
    assertThat(printed.trim()).isEqualTo("kfold 9.8.7-test");
  }

  /** The message of the first JSON line whose message starts with {@code start}, waiting up to 60 s for it. */
  private static String awaitMessage(Path log, String start) throws Exception {
    long deadline = System.currentTimeMillis() + 60_000;
    while (System.currentTimeMillis() < deadline) {
      for (String line : Files.readAllLines(log, StandardCharsets.UTF_8)) {
        JsonNode json = parse(line);
        if (json.path("message").asText().startsWith(start)) {
          return json.path("message").asText();
        }
      }
      Thread.sleep(100);
    }
    throw new AssertionError("no log line starting with '" + start + "' within 60 s; see " + log);
  }

  private static JsonNode parse(String line) {
    try {
      return Envelopes.parse(line.getBytes(StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new AssertionError("not a JSON line: " + line, e);
    }
  }

}
