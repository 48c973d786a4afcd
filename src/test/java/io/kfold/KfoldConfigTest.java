package io.kfold;

import io.kfold.config.NodeConfig;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class KfoldConfigTest {

  @Test
  @DisplayName("the defaults come from conf/kfold.yaml and declare the users merge type")
  void defaults() {
    NodeConfig config = NodeConfig.load(Map.of());
    assertThat(config.app()).isEqualTo("kfold");
    assertThat(config.http().port()).isEqualTo(8080);
    assertThat(config.http().host()).isEqualTo("127.0.0.1");
    assertThat(config.kafka().embedded()).isTrue();
    assertThat(config.types()).extracting(NodeConfig.TypeConfig::name).contains("users");
    assertThat(config.eventsTopic("users")).isEqualTo("kfold.users.events");
  }

  @Test
  @DisplayName("KFOLD_* variables override the file, by path in upper snake case")
  void environmentOverrides() {
    NodeConfig config = NodeConfig.load(Map.of("KFOLD_HTTP_PORT", "9000", "KFOLD_KAFKA_BOOTSTRAP", "k:9092",
        "KFOLD_FOLD_MAX_POLL_RECORDS", "77", "KFOLD_APP", "shop"));
    assertThat(config.http().port()).isEqualTo(9000);
    assertThat(config.kafka().bootstrap()).isEqualTo("k:9092");
    assertThat(config.kafka().embedded()).isFalse();
    assertThat(config.fold().maxPollRecords()).isEqualTo(77);
    assertThat(config.changesTopic("users")).isEqualTo("shop.users.changes");
  }

  @Test
  @DisplayName("an invalid value stops the start with a message naming the field and what it expects")
  void invalidValues() {
    assertThatThrownBy(() -> NodeConfig.load(Map.of("KFOLD_HTTP_PORT", "eighty")))
        .hasMessageContaining("'port' is 'eighty'").hasMessageContaining("whole number");
    assertThatThrownBy(() -> NodeConfig.load(Map.of("KFOLD_KAFKA_PARTITIONS", "0")))
        .hasMessageContaining("'partitions' is '0'");
    assertThatThrownBy(() -> NodeConfig.load(Map.of("KFOLD_APP", "no spaces")))
        .hasMessageContaining("'app' is 'no spaces'");
    assertThatThrownBy(() -> NodeConfig.load(Map.of("KFOLD_CONFIG", "/nonexistent/kfold.yaml")))
        .hasMessageContaining("/nonexistent/kfold.yaml");
  }

  /** The shipped configuration with {@code from} replaced by {@code to}, written to a file of its own. */
  static String shippedWith(String from, String to) {
    try {
      String shipped = Files.readString(Path.of("conf", "kfold.yaml"));
      assertThat(shipped).contains(from);
      Path file = TestNodes.tempDir("cfg").resolve("kfold.yaml");
      Files.writeString(file, shipped.replace(from, to));
      return file.toString();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  @Test
  @DisplayName("an unknown key in the file stops the start, naming the key and the nearest known one")
  void unknownKeyInFile() {
    assertThatThrownBy(() -> NodeConfig.load(Map.of("KFOLD_CONFIG", shippedWith("maxPollRecords:", "maxPolRecords:"))))
        .hasMessageContaining("unknown key 'fold.maxPolRecords'")
        .hasMessageContaining("did you mean 'fold.maxPollRecords'?");
    assertThatThrownBy(() -> NodeConfig.load(Map.of("KFOLD_CONFIG", shippedWith("  port: 8080", "  prot: 8080"))))
        .hasMessageContaining("unknown key 'http.prot'").hasMessageContaining("'http.port'");
    assertThatThrownBy(() -> NodeConfig.load(Map.of("KFOLD_CONFIG", shippedWith("    class: io.kfold.example.Orders",
        "    clas: io.kfold.example.Orders"))))
        .hasMessageContaining("unknown key 'types[1].clas'").hasMessageContaining("'types[1].class'");
    assertThatThrownBy(() -> NodeConfig.load(Map.of("KFOLD_CONFIG", shippedWith("dataDir:", "dataDirectory:"))))
        .hasMessageContaining("unknown key 'dataDirectory'").hasMessageContaining("did you mean 'dataDir'?");
  }

  @Test
  @DisplayName("a KFOLD_* variable that names no key stops the start, naming the nearest variable that does")
  void unknownEnvironmentVariable() {
    assertThatThrownBy(() -> NodeConfig.load(Map.of("KFOLD_FOLD_MAX_POL_RECORDS", "10")))
        .hasMessageContaining("KFOLD_FOLD_MAX_POL_RECORDS")
        .hasMessageContaining("did you mean KFOLD_FOLD_MAX_POLL_RECORDS (fold.maxPollRecords)?");
    assertThatThrownBy(() -> NodeConfig.load(Map.of("KFOLD_HTTP_PROT", "80")))
        .hasMessageContaining("KFOLD_HTTP_PROT").hasMessageContaining("KFOLD_HTTP_PORT");
    assertThatThrownBy(() -> NodeConfig.load(Map.of("KFOLD_EFFECTS_SHIPMENT_REQEST_ENABLED", "false")))
        .hasMessageContaining("KFOLD_EFFECTS_SHIPMENT_REQEST_ENABLED")
        .hasMessageContaining("KFOLD_EFFECTS_SHIPMENT_REQUEST_ENABLED");
    assertThatThrownBy(() -> NodeConfig.load(Map.of("KFOLD_HTTP", "x")))
        .hasMessageContaining("KFOLD_HTTP names a section, not a value");
    assertThatThrownBy(() -> NodeConfig.load(Map.of("KFOLD_TYPES_0_NAME", "x")))
        .hasMessageContaining("KFOLD_TYPES_0_NAME names an item of the list 'types'");
  }

  @Test
  @DisplayName("KFOLD_CONFIG names the file and no key: it is not refused")
  void configVariableIsNotAKey() {
    NodeConfig config = NodeConfig.load(Map.of("KFOLD_CONFIG", shippedWith("app: kfold", "app: shop"),
        "KFOLD_HTTP_PORT", "9001"));
    assertThat(config.app()).isEqualTo("shop");
    assertThat(config.http().port()).isEqualTo(9001);
  }
}
