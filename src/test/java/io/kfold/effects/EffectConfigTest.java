package io.kfold.effects;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.kfold.config.NodeConfig;
import io.kfold.config.ConfigSource;
import io.kfold.TestNodes;
import io.kfold.types.EntityTypes;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class EffectConfigTest {

  private static NodeConfig load(String effects) {
    return NodeConfig.load(TestNodes.withEffects(Map.of("KFOLD_KAFKA_BOOTSTRAP", "127.0.0.1:1"), TestNodes.tempDir("cfg"),
        effects));
  }

  @Test
  @DisplayName("the default configuration declares the shipment reaction, and leaves e-mail and index off")
  void defaults() {
    NodeConfig config = NodeConfig.load(java.util.Map.of());
    assertThat(config.effects()).extracting(EffectConfig::name).containsExactly("shipment-request");
    EffectConfig shipment = config.effects().get(0);
    assertThat(shipment.kind()).isEqualTo(EffectConfig.Kind.COMMAND);
    assertThat(shipment.delivery()).isEqualTo(EffectConfig.Delivery.AT_LEAST_ONCE);
    assertThat(shipment.events()).containsExactly("OrderPaid");
  }

  @Test
  @DisplayName("a worker of the default configuration is turned on and pointed elsewhere by environment variables")
  void enabledByEnvironment() {
    NodeConfig config = NodeConfig.load(java.util.Map.of("KFOLD_EFFECTS_ORDERS_INDEX_ENABLED", "true",
        "KFOLD_EFFECTS_ORDERS_INDEX_TARGET_URL", "http://search.internal:9200"));
    EffectConfig index = config.effects().stream().filter(e -> e.name().equals("orders-index")).findFirst().orElseThrow();
    assertThat(((EffectConfig.IndexTarget) index.target()).url()).isEqualTo("http://search.internal:9200");
  }

  @Test
  @DisplayName("a full worker is read with its retry, breaker and target")
  void fullWorker() {
    NodeConfig config = load("w:\n  kind: http\n  delivery: at-most-once\n  entities: [users]\n  events: [A, B]\n"
        + "  maxInFlightKeys: 3\n  timeoutMs: 500\n  retry: { attempts: 7, initialDelayMs: 5, maxDelayMs: 50, jitter: 0.5 }\n"
        + "  breaker: { failures: 9, openMs: 99 }\n  target: { method: PUT, url: \"http://h/{{key}}\", body: { v: \"{{version}}\" } }\n");
    EffectConfig w = config.effects().get(0);
    assertThat(w.delivery()).isEqualTo(EffectConfig.Delivery.AT_MOST_ONCE);
    assertThat(w.maxInFlightKeys()).isEqualTo(3);
    assertThat(w.retry()).isEqualTo(new EffectConfig.Retry(7, 5, 50, 0.5));
    assertThat(w.breaker()).isEqualTo(new EffectConfig.Breaker(9, 99));
    assertThat(((EffectConfig.HttpTarget) w.target()).method()).isEqualTo("PUT");
  }

  @Test
  @DisplayName("invalid configuration stops the start with a message naming the worker and the field")
  void invalid() {
    assertThatThrownBy(() -> load("w:\n  kind: fax\n  entities: [users]\n"))
        .hasMessageContaining("'effects.w.kind' is 'fax'");
    assertThatThrownBy(() -> load("w:\n  kind: http\n  entities: [users]\n  delivery: twice\n  target: { url: \"http://x\" }\n"))
        .hasMessageContaining("'effects.w.delivery' is 'twice'");
    // A worker may name a type of a plugin jar or one given in code: its types are checked when the node's are known.
    assertThatThrownBy(() -> EntityTypes.from(load("w:\n  kind: http\n  entities: [ghosts]\n  target: { url: \"http://x\" }\n")))
        .hasMessageContaining("'effects.w.entities' is 'ghosts'");
    assertThatThrownBy(() -> load("w:\n  kind: http\n  entities: [users]\n  target: { url: \"ftp://x\" }\n"))
        .hasMessageContaining("'effects.w.target.url' is 'ftp://x'");
    assertThatThrownBy(() -> load("w:\n  kind: http\n  entities: [users]\n  maxInFlightKeys: 0\n  target: { url: \"http://x\" }\n"))
        .hasMessageContaining("'effects.w.maxInFlightKeys' is '0'");
    assertThatThrownBy(() -> load("w:\n  kind: email\n  entities: [users]\n  target: { host: h, from: a@b.c, to: x, subject: s }\n"))
        .hasMessageContaining("'effects.w.target.body'");
    assertThatThrownBy(() -> load("w:\n  kind: command\n  entities: [users]\n  target: { entity: users, id: x }\n"))
        .hasMessageContaining("'effects.w.target.command'");
    assertThatThrownBy(() -> load("w:\n  kind: http\n  entities: [users]\n  retry: { jitter: 2 }\n  target: { url: \"http://x\" }\n"))
        .hasMessageContaining("'effects.w.retry.jitter' is '2'");
  }

  @Test
  @DisplayName("KFOLD_* variables set worker fields the file lacks: camelCase names, nested sections, names with dashes")
  void environmentSetsFieldsTheFileLacks() {
    NodeConfig config = NodeConfig.load(Map.of(
        "KFOLD_EFFECTS_SHIPMENT_REQUEST_MAX_IN_FLIGHT_KEYS", "3",
        "KFOLD_EFFECTS_SHIPMENT_REQUEST_DELIVERY", "at-most-once",
        "KFOLD_EFFECTS_SHIPMENT_REQUEST_RETRY_ATTEMPTS", "9",
        "KFOLD_EFFECTS_SHIPMENT_REQUEST_BREAKER_OPEN_MS", "777",
        "KFOLD_EFFECTS_ORDERS_INDEX_ENABLED", "true",
        "KFOLD_EFFECTS_ORDERS_INDEX_TARGET_DELETE_ON", "OrderCancelled"));
    EffectConfig shipment = worker(config, "shipment-request");
    assertThat(shipment.maxInFlightKeys()).isEqualTo(3);
    assertThat(shipment.delivery()).isEqualTo(EffectConfig.Delivery.AT_MOST_ONCE);
    assertThat(shipment.retry().attempts()).isEqualTo(9);
    assertThat(shipment.breaker().openMs()).isEqualTo(777);
    assertThat(((EffectConfig.IndexTarget) worker(config, "orders-index").target()).deleteOn())
        .containsExactly("OrderCancelled");
  }

  @Test
  @DisplayName("an unknown key in a worker, or in its target for the worker's kind, stops the start naming the nearest key")
  void unknownWorkerKeys() {
    assertThatThrownBy(() -> load("w:\n  kind: http\n  entities: [users]\n  maxInflightKeys: 3\n  target: { url: \"http://x\" }\n"))
        .hasMessageContaining("unknown key 'effects.w.maxInflightKeys'")
        .hasMessageContaining("did you mean 'effects.w.maxInFlightKeys'?");
    assertThatThrownBy(() -> load("w:\n  kind: http\n  entities: [users]\n  retry: { atempts: 3 }\n  target: { url: \"http://x\" }\n"))
        .hasMessageContaining("unknown key 'effects.w.retry.atempts'").hasMessageContaining("'effects.w.retry.attempts'");
    assertThatThrownBy(() -> load("w:\n  kind: index\n  entities: [users]\n  target: { url: \"http://x\", index: i, deleteon: [X] }\n"))
        .hasMessageContaining("unknown key 'effects.w.target.deleteon'").hasMessageContaining("'effects.w.target.deleteOn'");
    // A field of another kind's target is unknown in this one.
    assertThatThrownBy(() -> load("w:\n  kind: http\n  entities: [users]\n  target: { url: \"http://x\", subject: s }\n"))
        .hasMessageContaining("unknown key 'effects.w.target.subject'");
    // Also in a worker that is off: turning it on later must not be when the typo shows.
    assertThatThrownBy(() -> load("w:\n  enabled: false\n  kind: http\n  entities: [users]\n  target: { urll: \"http://x\" }\n"))
        .hasMessageContaining("unknown key 'effects.w.target.urll'").hasMessageContaining("'effects.w.target.url'");
  }

  @Test
  @DisplayName("every optional field of each kind's target is accepted, and free-form bodies and commands keep any keys")
  void optionalFieldsOfEachKind() {
    NodeConfig config = load("mail:\n  kind: email\n  entities: [users]\n"
        + "  target: { host: h, port: 465, ssl: true, startTls: false, username: u, password: p, from: a@b.c, to: x@y.z,"
        + " subject: s, body: b }\n"
        + "search:\n  kind: index\n  entities: [users]\n  target: { url: \"http://x\", index: i, deleteOn: [Gone] }\n"
        + "hook:\n  kind: http\n  entities: [users]\n  target: { method: PUT, url: \"http://x\", body: { anything: { goes: 1 } } }\n"
        + "react:\n  kind: command\n  entities: [users]\n  target: { entity: users, id: x, command: { type: t, payload: { any: 1 } } }\n"
        + "append:\n  kind: command\n  entities: [users]\n  target: { entity: users, id: x, events: [{ type: T, payload: { any: 1 } }] }\n");
    assertThat(config.effects()).extracting(EffectConfig::name).containsExactlyInAnyOrder("mail", "search", "hook", "react", "append");
    EffectConfig.EmailTarget mail = (EffectConfig.EmailTarget) worker(config, "mail").target();
    assertThat(mail.ssl()).isTrue();
    assertThat(mail.username()).isEqualTo("u");
  }

  @Test
  @DisplayName("a sink worker names a class with free settings, or a sink registered in code; a wrong target names the field")
  void sinkTargets() {
    NodeConfig config = load("audit:\n  kind: sink\n  entities: [users]\n"
        + "  target: { class: com.acme.Audit$Trail, settings: { trail: users, nested: { any: [1, 2] } } }\n"
        + "plain:\n  kind: sink\n  entities: [users]\n  target: { class: com.acme.Plain }\n"
        + "mine:\n  kind: sink\n  delivery: at-most-once\n  entities: [users]\n  target: { name: ledger }\n");
    EffectConfig.SinkTarget audit = (EffectConfig.SinkTarget) worker(config, "audit").target();
    assertThat(audit.className()).isEqualTo("com.acme.Audit$Trail");
    assertThat(audit.settings().path("nested").path("any").get(1).asInt()).isEqualTo(2);
    assertThat(audit.name()).isNull();
    assertThat(((EffectConfig.SinkTarget) worker(config, "plain").target()).settings()).isNull();
    assertThat(worker(config, "mine").target()).isEqualTo(new EffectConfig.SinkTarget(null, null, "ledger"));

    assertThatThrownBy(() -> load("w:\n  kind: sink\n  entities: [users]\n  target: { settings: { a: 1 } }\n"))
        .hasMessageContaining("'effects.w.target.class'").hasMessageContaining("either 'class'");
    assertThatThrownBy(() -> load("w:\n  kind: sink\n  entities: [users]\n  target: { class: a.B, name: x }\n"))
        .hasMessageContaining("'effects.w.target.class'").hasMessageContaining("or 'name'");
    assertThatThrownBy(() -> load("w:\n  kind: sink\n  entities: [users]\n  target: { name: x, settings: { a: 1 } }\n"))
        .hasMessageContaining("'effects.w.target.settings'");
    assertThatThrownBy(() -> load("w:\n  kind: sink\n  entities: [users]\n  target: { class: \"com.acme.My Sink\" }\n"))
        .hasMessageContaining("'effects.w.target.class' is 'com.acme.My Sink', expected a Java class name");
    assertThatThrownBy(() -> load("w:\n  kind: sink\n  entities: [users]\n  target: { class: a.B, settings: [1] }\n"))
        .hasMessageContaining("'effects.w.target.settings' is '[1]', expected an object");
    assertThatThrownBy(() -> load("w:\n  kind: sink\n  entities: [users]\n  target: { class: a.B, setings: { a: 1 } }\n"))
        .hasMessageContaining("unknown key 'effects.w.target.setings'").hasMessageContaining("'effects.w.target.settings'");
  }

  @Test
  @DisplayName("a secret among a sink's settings is masked in the effective configuration")
  void sinkSettingsSecretsMasked() {
    Map<String, String> env = TestNodes.withEffects(Map.of("KFOLD_KAFKA_BOOTSTRAP", "127.0.0.1:1"),
        TestNodes.tempDir("cfg"), "w:\n  kind: sink\n  entities: [users]\n"
            + "  target: { class: a.B, settings: { trail: users, apiKey: do-not-show-me } }\n");
    assertThat(ConfigSource.read(env).masked()).doesNotContain("do-not-show-me")
        .contains("apiKey: " + ConfigSource.MASK, "trail: users");
  }

  private static EffectConfig worker(NodeConfig config, String name) {
    return config.effects().stream().filter(e -> e.name().equals(name)).findFirst().orElseThrow();
  }

  @Test
  @DisplayName("the shipped configuration loads with every worker on, and shows every kind and both deliveries")
  void shippedWorkersShowEveryKind() throws Exception {
    JsonNode shipped = new ObjectMapper(new YAMLFactory()).readTree(Path.of("conf", "kfold.yaml").toFile());
    Map<String, String> allOn = new HashMap<>();
    shipped.path("effects").fieldNames().forEachRemaining(name ->
        allOn.put("KFOLD_EFFECTS_" + name.replace('-', '_').toUpperCase() + "_ENABLED", "true"));
    NodeConfig config = NodeConfig.load(allOn);
    assertThat(config.effects()).hasSize(shipped.path("effects").size());
    assertThat(config.effects()).extracting(EffectConfig::kind).containsExactlyInAnyOrder(EffectConfig.Kind.values());
    assertThat(config.effects()).extracting(EffectConfig::delivery).contains(EffectConfig.Delivery.values());
    EffectConfig hook = config.effects().stream().filter(e -> e.kind() == EffectConfig.Kind.HTTP).findFirst().orElseThrow();
    assertThat(hook.delivery()).isEqualTo(EffectConfig.Delivery.AT_MOST_ONCE);
    assertThat(((EffectConfig.HttpTarget) hook.target()).url()).startsWith("http://localhost:");
  }
}
