package io.kfold;

import io.kfold.config.ConfigSource;
import io.kfold.config.NodeConfig;
import io.kfold.effects.EffectConfig;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The layers of the configuration, references to secrets, and what is shown of them. */
class ConfigSourceTest {

  /** A user's file holding {@code yaml}, and nothing else. */
  static String userFile(String yaml) {
    try {
      Path file = TestNodes.tempDir("layers").resolve("mine.yaml");
      Files.writeString(file, yaml);
      return file.toString();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static Path secretFile(String content) {
    try {
      Path file = TestNodes.tempDir("secret").resolve("password");
      Files.writeString(file, content);
      return file;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  @Test
  @DisplayName("a user's file that changes one nested key keeps every other default")
  void userFileChangesOnlyWhatItNames() {
    NodeConfig config = NodeConfig.load(Map.of("KFOLD_CONFIG", userFile("fold:\n  maxPollRecords: 7\n")));
    NodeConfig defaults = NodeConfig.load(Map.of());
    assertThat(config.fold().maxPollRecords()).isEqualTo(7);
    assertThat(config.fold().cacheEntries()).isEqualTo(defaults.fold().cacheEntries());
    assertThat(config.fold().transactions()).isEqualTo(defaults.fold().transactions());
    assertThat(config.http()).isEqualTo(defaults.http());
    assertThat(config.types()).isEqualTo(defaults.types());
    assertThat(config.views()).extracting(NodeConfig.ViewConfig::name)
        .containsExactlyElementsOf(defaults.views().stream().map(NodeConfig.ViewConfig::name).toList());
    assertThat(config.effects()).extracting(EffectConfig::name).containsExactly("shipment-request");
  }

  @Test
  @DisplayName("a list replaces the default one; a file with its own types brings its own views and workers")
  void listsAndTheApplicationReplace() {
    NodeConfig config = NodeConfig.load(Map.of("KFOLD_CONFIG", userFile("types:\n  - {name: items, fold: merge}\n")));
    assertThat(config.types()).extracting(NodeConfig.TypeConfig::name).containsExactly("items");
    assertThat(config.views()).isEmpty();
    assertThat(config.effects()).isEmpty();
    assertThat(config.http().port()).isEqualTo(8080);
  }

  @Test
  @DisplayName("KFOLD_* variables win over the user's file, and reach kafka.properties in the Kafka image's style")
  void environmentOverFile() {
    NodeConfig config = NodeConfig.load(Map.of(
        "KFOLD_CONFIG", userFile("http:\n  port: 9000\nkafka:\n  properties:\n    sasl.mechanism: PLAIN\n"),
        "KFOLD_HTTP_PORT", "9001",
        "KFOLD_KAFKA_PROPERTIES_SASL_MECHANISM", "SCRAM-SHA-512",
        "KFOLD_KAFKA_PROPERTIES_SECURITY_PROTOCOL", "SASL_SSL"));
    assertThat(config.http().port()).isEqualTo(9001);
    assertThat(config.kafka().properties())
        .containsEntry("sasl.mechanism", "SCRAM-SHA-512").containsEntry("security.protocol", "SASL_SSL");
  }

  @Test
  @DisplayName("${file:} is the file's content, trimmed, and ${env:} the variable, also inside a value")
  void referencesResolve() {
    Path password = secretFile("s3cret-from-file\n");
    NodeConfig config = NodeConfig.load(Map.of(
        "KFOLD_CONFIG", userFile("""
            kafka:
              properties:
                ssl.truststore.password: "${file:%s}"
                sasl.jaas.config: 'org.apache.kafka.common.security.scram.ScramLoginModule required username="kfold" password="${env:KAFKA_PASSWORD}";'
            """.formatted(password)),
        "KAFKA_PASSWORD", "s3cret-from-env"));
    assertThat(config.kafka().properties())
        .containsEntry("ssl.truststore.password", "s3cret-from-file")
        .containsEntry("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required"
            + " username=\"kfold\" password=\"s3cret-from-env\";");
  }

  @Test
  @DisplayName("a reference to a missing file or variable stops the start, naming the key and the reference")
  void missingReferences() {
    assertThatThrownBy(() -> NodeConfig.load(Map.of(
        "KFOLD_CONFIG", userFile("kafka:\n  properties:\n    ssl.key.password: ${file:/nonexistent/kfold/key}\n"),
        "KFOLD_KAFKA_PROPERTIES_SASL_JAAS_CONFIG", "${env:NOT_SET_ANYWHERE}")))
        .isInstanceOf(ConfigSource.Problems.class)
        .hasMessageContaining("'kafka.properties.ssl.key.password' refers to ${file:/nonexistent/kfold/key},"
            + " but there is no file /nonexistent/kfold/key")
        .hasMessageContaining("'kafka.properties.sasl.jaas.config' refers to ${env:NOT_SET_ANYWHERE},"
            + " but the variable NOT_SET_ANYWHERE is not set");
  }

  @Test
  @DisplayName("an unknown key or Kafka setting stops the start, naming the nearest known one")
  void nearestKnownKey() {
    assertThatThrownBy(() -> NodeConfig.load(Map.of("KFOLD_CONFIG", userFile("fold:\n  maxPolRecords: 3\n"))))
        .hasMessageContaining("unknown key 'fold.maxPolRecords' — did you mean 'fold.maxPollRecords'?");
    assertThatThrownBy(() -> NodeConfig.load(Map.of("KFOLD_KAFKA_PROPERTIES_SASL_MECHANSIM", "PLAIN")))
        .hasMessageContaining("'kafka.properties.sasl.mechansim' is no setting of a Kafka producer, consumer or admin"
            + " client — did you mean 'kafka.properties.sasl.mechanism'?");
  }

  @Test
  @DisplayName("kafka.properties may not weaken kfold's guarantees: each such setting is refused with its reason")
  void guaranteesAreRefused() {
    assertThatThrownBy(() -> NodeConfig.load(Map.of("KFOLD_CONFIG", userFile("""
        kafka:
          properties:
            isolation.level: read_uncommitted
            enable.idempotence: false
            acks: 1
            group.id: mine
            security.protocol: SASL_SSL
        """))))
        .isInstanceOf(ConfigSource.Problems.class)
        .hasMessageContaining("'kafka.properties.isolation.level' is kfold's to set: kfold's readers read committed")
        .hasMessageContaining("'kafka.properties.enable.idempotence' is kfold's to set")
        .hasMessageContaining("'kafka.properties.acks' is kfold's to set")
        .hasMessageContaining("'kafka.properties.group.id' is kfold's to set")
        .hasMessageNotContaining("security.protocol");
  }

  @Test
  @DisplayName("the effective configuration masks the JAAS line, passwords, and every value that came from a reference")
  void maskedConfiguration() {
    Path password = secretFile("s3cret-from-file\n");
    ConfigSource source = ConfigSource.read(Map.of(
        "KFOLD_CONFIG", userFile("""
            kafka:
              bootstrap: broker:9093
              properties:
                security.protocol: SASL_SSL
                sasl.jaas.config: 'org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="inline-jaas-secret";'
                ssl.truststore.password: "${file:%s}"
            """.formatted(password)),
        "KFOLD_HTTP_ADVERTISED_URL", "${env:ADVERTISED}",
        "ADVERTISED", "http://node-with-a-token-in-its-url:8080"));
    String shown = source.masked();
    assertThat(shown).doesNotContain("inline-jaas-secret", "s3cret-from-file", "node-with-a-token-in-its-url");
    assertThat(shown).contains("sasl.jaas.config: " + ConfigSource.MASK, "ssl.truststore.password: " + ConfigSource.MASK,
        "advertisedUrl: " + ConfigSource.MASK, "security.protocol: SASL_SSL", "bootstrap: broker:9093");
  }

  @Test
  @DisplayName("a message about an invalid value never quotes a secret")
  void secretsStayOutOfMessages() {
    assertThatThrownBy(() -> NodeConfig.load(Map.of("KFOLD_HTTP_PORT", "${env:PORT_SECRET}", "PORT_SECRET", "hunter22")))
        .hasMessageContaining("'port' is '" + ConfigSource.MASK + "'")
        .hasMessageNotContaining("hunter22");
  }
}
