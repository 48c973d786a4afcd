package io.kfold;

import io.kfold.config.ConfigSource;
import io.kfold.log.LocalBroker;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/** {@code --print-config}, {@code --check-config}, and the configuration a starting node logs: never a secret. */
class ConfigCommandsTest {

  private static final String JAAS_SECRET = "jaas-password-never-shown";
  private static final String ENV_SECRET = "env-password-never-shown";

  private static final String SECURED = """
      kafka:
        properties:
          security.protocol: SASL_SSL
          sasl.mechanism: SCRAM-SHA-512
          sasl.jaas.config: 'org.apache.kafka.common.security.scram.ScramLoginModule required username="kfold" password="%s";'
          ssl.truststore.password: ${env:TRUSTSTORE_PASSWORD}
      """.formatted(JAAS_SECRET);

  record Run(int status, String out, String err) {}

  /** {@code --check-config} or {@code --print-config} in this JVM: the same reading of the configuration a start makes. */
  static Run command(Map<String, String> env, String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int status = Main.command(args, env, new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8));
    return new Run(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  @Test
  @DisplayName("--print-config prints the effective configuration with its secrets masked, and succeeds")
  void printConfig() {
    Run run = command(Map.of("TRUSTSTORE_PASSWORD", ENV_SECRET, "KFOLD_HTTP_PORT", "9123"),
        "--print-config", ConfigSourceTest.userFile(SECURED));
    assertThat(run.status()).isZero();
    assertThat(run.out()).contains("port: 9123", "sasl.mechanism: SCRAM-SHA-512",
        "sasl.jaas.config: " + ConfigSource.MASK, "ssl.truststore.password: " + ConfigSource.MASK);
    assertThat(run.out() + run.err()).doesNotContain(JAAS_SECRET, ENV_SECRET);
  }

  @Test
  @DisplayName("--check-config accepts a valid file, and refuses a bad one listing every problem")
  void checkConfig() {
    Run valid = command(Map.of("TRUSTSTORE_PASSWORD", ENV_SECRET), "--check-config", ConfigSourceTest.userFile(SECURED));
    assertThat(valid.status()).as(valid.err()).isZero();
    assertThat(valid.out()).contains("is valid");

    String bad = ConfigSourceTest.userFile(SECURED + "http:\n  prot: 80\nfold:\n  maxPolRecords: 3\n");
    Run invalid = command(Map.of(), "--check-config", bad);
    assertThat(invalid.status()).isEqualTo(Main.INVALID_CONFIGURATION);
    assertThat(invalid.err().lines().filter(line -> line.startsWith("  - ")).toList()).containsExactly(
        "  - unknown key 'http.prot' — did you mean 'http.port'?",
        "  - unknown key 'fold.maxPolRecords' — did you mean 'fold.maxPollRecords'?",
        "  - 'kafka.properties.ssl.truststore.password' refers to ${env:TRUSTSTORE_PASSWORD}, but the variable"
            + " TRUSTSTORE_PASSWORD is not set");
    assertThat(invalid.err()).doesNotContain(JAAS_SECRET);
  }

  @Test
  @DisplayName("the kfold process exits non-zero on --check-config of a bad file, and zero on a good one")
  void checkConfigExitStatus() throws Exception {
    Process bad = java(Map.of(), "--check-config", ConfigSourceTest.userFile("kafka:\n  properties:\n    acks: 1\n"));
    String badOutput = new String(bad.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(bad.waitFor(60, TimeUnit.SECONDS)).isTrue();
    assertThat(bad.exitValue()).as(badOutput).isEqualTo(Main.INVALID_CONFIGURATION);
    assertThat(badOutput).contains("'kafka.properties.acks' is kfold's to set");

    Process good = java(Map.of(), "--check-config", ConfigSourceTest.userFile("fold:\n  maxPollRecords: 9\n"));
    String goodOutput = new String(good.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(good.waitFor(60, TimeUnit.SECONDS)).isTrue();
    assertThat(good.exitValue()).as(goodOutput).isZero();
  }

  @Test
  @DisplayName("a starting node logs its effective configuration, secrets masked")
  void startLogsMaskedConfiguration() throws Exception {
    // Nothing listens at this address: the node logs its configuration, then waits for the cluster.
    Map<String, String> env = Map.of("KFOLD_CONFIG", ConfigSourceTest.userFile(SECURED),
        "TRUSTSTORE_PASSWORD", ENV_SECRET, "KFOLD_KAFKA_BOOTSTRAP", "127.0.0.1:" + LocalBroker.freePort(),
        "KFOLD_HTTP_PORT", "0", "KFOLD_DATA_DIR", TestNodes.tempDir("startlog").toString());
    Process process = java(env);
    StringBuilder seen = new StringBuilder();
    try (BufferedReader lines = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
      // The last masked line of the block: what it masks, and all before it, has been written.
      String line;
      while ((line = lines.readLine()) != null) {
        seen.append(line).append('\n');
        if (line.contains("ssl.truststore.password:")) {
          break;
        }
      }
    } finally {
      process.destroyForcibly();
      assertThat(process.waitFor(30, TimeUnit.SECONDS)).isTrue();
    }
    assertThat(seen.toString()).contains("effective configuration (secrets masked)",
        "sasl.jaas.config: " + ConfigSource.MASK, "ssl.truststore.password: " + ConfigSource.MASK);
    assertThat(seen.toString()).doesNotContain(JAAS_SECRET, ENV_SECRET);
  }

  /** kfold's main class in a JVM of its own, its output and errors in one stream. */
  private static Process java(Map<String, String> env, String... args) throws Exception {
    String java = ProcessHandle.current().info().command().orElse("java");
    List<String> command = new java.util.ArrayList<>(List.of(java, "-Xmx256m", "-cp",
        System.getProperty("java.class.path"), Main.class.getName()));
    command.addAll(List.of(args));
    ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
    builder.environment().keySet().removeIf(name -> name.startsWith("KFOLD_"));
    builder.environment().putAll(env);
    return builder.start();
  }
}
