package io.kfold;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class KfoldConfigTest {

  @Test
  @DisplayName("the defaults come from conf/kfold.yaml and declare the users merge type")
  void defaults() {
    KfoldConfig config = KfoldConfig.load(Map.of());
    assertThat(config.app()).isEqualTo("kfold");
    assertThat(config.http().port()).isEqualTo(8080);
    assertThat(config.http().host()).isEqualTo("127.0.0.1");
    assertThat(config.kafka().embedded()).isTrue();
    assertThat(config.types()).extracting(KfoldConfig.TypeConfig::name).contains("users");
    assertThat(config.eventsTopic("users")).isEqualTo("kfold.users.events");
  }

  @Test
  @DisplayName("KFOLD_* variables override the file, by path in upper snake case")
  void environmentOverrides() {
    KfoldConfig config = KfoldConfig.load(Map.of("KFOLD_HTTP_PORT", "9000", "KFOLD_KAFKA_BOOTSTRAP", "k:9092",
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
    assertThatThrownBy(() -> KfoldConfig.load(Map.of("KFOLD_HTTP_PORT", "eighty")))
        .hasMessageContaining("'port' is 'eighty'").hasMessageContaining("whole number");
    assertThatThrownBy(() -> KfoldConfig.load(Map.of("KFOLD_KAFKA_PARTITIONS", "0")))
        .hasMessageContaining("'partitions' is '0'");
    assertThatThrownBy(() -> KfoldConfig.load(Map.of("KFOLD_APP", "no spaces")))
        .hasMessageContaining("'app' is 'no spaces'");
    assertThatThrownBy(() -> KfoldConfig.load(Map.of("KFOLD_CONFIG", "/nonexistent/kfold.yaml")))
        .hasMessageContaining("/nonexistent/kfold.yaml");
  }
}
