package io.kfold.effects;

import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.kfold.effects.TargetServer.Call;
import io.kfold.log.LocalBroker;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.WebClient;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import static org.assertj.core.api.Assertions.assertThat;

@ExtendWith(TestBroker.class)
class HttpEffectTest {

  private static String worker(String url, String extra) {
    return "hook:\n"
        + "  kind: http\n"
        + "  entities: [users]\n"
        + "  maxInFlightKeys: 8\n"
        + "  timeoutMs: 1000\n"
        + "  retry: { attempts: 30, initialDelayMs: 10, maxDelayMs: 200 }\n"
        + "  breaker: { failures: 1000, openMs: 1000 }\n"
        + extra
        + "  target: { url: \"" + url + "\" }\n";
  }

  private static void produce(NodeConfig config, String key, String... payloads) {
    produceTo(config, "users", key, payloads);
  }

  private static void produceTo(NodeConfig config, String type, String key, String... payloads) {
    try (KafkaProducer<byte[], byte[]> producer = TestNodes.plainProducer()) {
      for (String payload : payloads) {
        producer.send(new ProducerRecord<>(config.eventsTopic(type), key.getBytes(StandardCharsets.UTF_8),
            payload.getBytes(StandardCharsets.UTF_8)));
      }
    }
  }

  static void await(String what, BooleanSupplier condition) throws InterruptedException {
    long deadline = System.currentTimeMillis() + 120_000;
    while (!condition.getAsBoolean()) {
      if (System.currentTimeMillis() > deadline) {
        throw new AssertionError("timed out waiting for " + what);
      }
      Thread.sleep(50);
    }
  }

  @Test
  @DisplayName("at-least-once against a server failing 30% of calls: every change delivered in order per entity, each"
      + " retry with the change's one Idempotency-Key, no call for a key after it got a prompt 2xx")
  void atLeastOnceThroughFailures() throws Exception {
    Vertx vertx = Vertx.vertx();
    TargetServer server = new TargetServer(vertx);
    server.failureRate = 0.3;
    String app = TestNodes.newApp("hook");
    Path dir = TestNodes.tempDir("hook");
    NodeConfig config = NodeConfig.load(TestNodes.envWithEffects(app, dir, worker(server.url(), "  delivery: at-least-once\n")));
    NodeRuntime node = TestNodes.startCaughtUp(vertx, config);
    try {
      int entities = 40;
      int perEntity = 10;
      for (int e = 0; e < entities; e++) {
        List<String> payloads = new ArrayList<>();
        for (int i = 1; i <= perEntity; i++) {
          payloads.add("{\"n\":" + i + "}");
        }
        produce(config, "u" + e, payloads.toArray(String[]::new));
      }
      // The target keeps no state that kfold could lean on: what kfold did is read from every call.
      await("every change answered with a prompt 2xx", () -> promptlyAnswered(server.calls()).size() == entities * perEntity);
      List<Call> calls = server.calls();
      Map<String, Integer> answered = promptlyAnswered(calls);
      Set<String> expected = new HashSet<>();
      for (int e = 0; e < entities; e++) {
        for (long v = 1; v <= perEntity; v++) {
          expected.add("u" + e + ":" + v);
        }
      }
      assertThat(answered.keySet()).isEqualTo(expected);
      assertThat(calls.size()).as("failures were retried").isGreaterThan(entities * perEntity);

      Map<String, Set<String>> keysByChange = new TreeMap<>();
      calls.forEach(call -> keysByChange.computeIfAbsent(call.changeId(), c -> new TreeSet<>()).add(call.key()));
      keysByChange.values().removeIf(keys -> keys.size() == 1);
      assertThat(keysByChange).as("changes whose attempts carried different Idempotency-Keys").isEmpty();
      assertThat(calls).as("the Idempotency-Key is the event's id").allMatch(call -> call.key().equals(call.eventId()));

      // kfold starts an entity's next change only once it is done with the one before, so each change
      // but the last of its entity has had every call kfold will make for it by now.
      assertThat(calls).as("calls for a change after it got a prompt 2xx")
          .filteredOn(call -> call.seq() > answered.get(call.changeId())).isEmpty();
      assertThat(calls).as("calls for a change before the previous change of its entity got a prompt 2xx")
          .filteredOn(call -> call.version() > 1 && call.seq() < answered.get(call.entity() + ":" + (call.version() - 1)))
          .isEmpty();
    } finally {
      node.stop().await(60, TimeUnit.SECONDS);
      server.close();
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  @Test
  @DisplayName("a worker on two types delivers every change of entities that share an id, in order per entity")
  void entitiesOfTwoTypesSharingIds() throws Exception {
    Vertx vertx = Vertx.vertx();
    TargetServer server = new TargetServer(vertx);
    String app = TestNodes.newApp("twotypes");
    String worker = worker(server.url(), "").replace("entities: [users]", "entities: [users, shipments]");
    NodeConfig config = NodeConfig.load(TestNodes.envWithEffects(app, TestNodes.tempDir("twotypes"), worker));
    NodeRuntime node = TestNodes.startCaughtUp(vertx, config);
    try {
      List<String> ids = List.of("o-1", "o-2", "o-3");
      for (String id : ids) {
        produceTo(config, "users", id, "{\"n\":1}", "{\"n\":2}", "{\"n\":3}");
      }
      await("the users' changes delivered", () -> ids.stream()
          .allMatch(id -> server.appliedVersionsByEntity.getOrDefault("users/" + id, List.of()).size() == 3));
      // The same ids in the other type, with lower versions than those already delivered.
      for (String id : ids) {
        produceTo(config, "shipments", id, "{\"n\":1}", "{\"n\":2}");
      }
      produceTo(config, "users", "o-1", "{\"n\":4}");
      await("o-1's fourth users change delivered",
          () -> server.appliedVersionsByEntity.get("users/o-1").size() == 4);
      await("every change of both types delivered", () -> server.applied.size() == 3 * 3 + 1 + 3 * 2);
      for (String id : ids) {
        assertThat(server.appliedVersionsByEntity.get("shipments/" + id)).as("shipments/%s", id).containsExactly(1L, 2L);
      }
      assertThat(server.appliedVersionsByEntity.get("users/o-1")).containsExactly(1L, 2L, 3L, 4L);
      assertThat(server.appliedVersionsByEntity.get("users/o-2")).containsExactly(1L, 2L, 3L);
    } finally {
      node.stop().await(60, TimeUnit.SECONDS);
      server.close();
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  @Test
  @DisplayName("a permanent failure parks its entity while others go on; replay resumes it in order, skip drops the dead letter")
  void parkReplaySkip() throws Exception {
    Vertx vertx = Vertx.vertx();
    TargetServer server = new TargetServer(vertx);
    server.refuse = body -> body.getJsonObject("event").getJsonObject("payload").getBoolean("poison", false);
    String app = TestNodes.newApp("park");
    NodeConfig config = NodeConfig.load(TestNodes.envWithEffects(app, TestNodes.tempDir("park"),
        worker(server.url(), "")));
    NodeRuntime node = TestNodes.startCaughtUp(vertx, config);
    WebClient client = WebClient.create(vertx);
    try {
      produce(config, "a", "{\"n\":1}", "{\"n\":2,\"poison\":true}", "{\"n\":3}", "{\"n\":4}");
      produce(config, "b", "{\"n\":1}", "{\"n\":2}", "{\"n\":3}");
      produce(config, "c", "{\"n\":1,\"poison\":true}", "{\"n\":2}");
      await("b delivered", () -> server.appliedVersions.getOrDefault("b", List.of()).size() == 3);
      Reply parked = call(client, node, HttpMethod.GET, "/v1/_effects/hook/parked");
      await("a and c parked", () -> {
        try {
          return call(client, node, HttpMethod.GET, "/v1/_effects/hook/parked").body().path("parked").size() == 2
              && call(client, node, HttpMethod.GET, "/v1/_effects/hook/parked").body().toString().contains("\"a:4\"");
        } catch (Exception e) {
          throw new IllegalStateException(e);
        }
      });
      parked = call(client, node, HttpMethod.GET, "/v1/_effects/hook/parked");
      com.fasterxml.jackson.databind.JsonNode a = null;
      for (var entity : parked.body().path("parked")) {
        if (entity.path("key").asText().equals("a")) {
          a = entity;
        }
      }
      assertThat(a).as("a is parked").isNotNull();
      assertThat(a.path("events")).hasSize(3);
      assertThat(a.path("events").get(0).path("id").asText()).isEqualTo("a:2");
      assertThat(a.path("events").get(0).path("error").asText()).contains("422");
      assertThat(server.appliedVersions.get("a")).containsExactly(1L);

      server.refuse = body -> false;  // the target is fixed
      Reply replayed = call(client, node, HttpMethod.POST, "/v1/_effects/hook/parked/a/replay");
      assertThat(replayed.status()).isEqualTo(200);
      assertThat(replayed.body().path("replayed").asInt()).isEqualTo(3);
      assertThat(replayed.body().path("stillParked").asInt()).isZero();
      produce(config, "a", "{\"n\":5}");
      await("a:5 delivered after the replay", () -> server.appliedVersions.get("a").size() == 5);
      assertThat(server.appliedVersions.get("a")).containsExactly(1L, 2L, 3L, 4L, 5L);

      Reply skipped = call(client, node, HttpMethod.POST, "/v1/_effects/hook/parked/c/skip");
      assertThat(skipped.body().path("skipped").asInt()).isEqualTo(1);
      assertThat(skipped.body().path("replayed").asInt()).isEqualTo(1);
      assertThat(server.appliedVersions.get("c")).containsExactly(2L);
      assertThat(call(client, node, HttpMethod.GET, "/v1/_effects/hook/parked").body().path("parked")).isEmpty();
      assertThat(call(client, node, HttpMethod.POST, "/v1/_effects/hook/parked/b/replay").status()).isEqualTo(404);

      Reply status = call(client, node, HttpMethod.GET, "/v1/_effects");
      assertThat(status.body().path("workers").path("hook").path("deadLettered").asInt()).isEqualTo(2);
      assertThat(status.body().path("workers").path("hook").path("parked").asInt()).isEqualTo(3);
    } finally {
      client.close();
      node.stop().await(60, TimeUnit.SECONDS);
      server.close();
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  @Test
  @DisplayName("while the target is down the breaker pauses the worker: one probe per openMs, no attempts burned,"
      + " nothing dead-lettered, all delivered once it is back")
  void breakerWaitsForTheTarget() throws Exception {
    Vertx vertx = Vertx.vertx();
    TargetServer server = new TargetServer(vertx);
    server.down = true;
    String app = TestNodes.newApp("breaker");
    long openMs = 200;
    String worker = "hook:\n  kind: http\n  entities: [users]\n  timeoutMs: 1000\n"
        + "  retry: { attempts: 3, initialDelayMs: 10, maxDelayMs: 50 }\n"
        + "  breaker: { failures: 3, openMs: " + openMs + " }\n"
        + "  target: { url: \"" + server.url() + "\" }\n";
    NodeConfig config = NodeConfig.load(TestNodes.envWithEffects(app, TestNodes.tempDir("breaker"), worker));
    NodeRuntime node = TestNodes.startCaughtUp(vertx, config);
    WebClient client = WebClient.create(vertx);
    int entities = 3;
    try {
      for (int e = 0; e < entities; e++) {
        produce(config, "k" + e, "{\"n\":1}", "{\"n\":2}");
      }
      // Before the breaker opens: at most one call per entity in flight and the 3 failures that open
      // it. Every call after that is a probe. Wait until one change has been tried more often than
      // its 3 attempts allow: were failures while down counted, it would be dead-lettered by then.
      int beforeOpen = entities + 3;
      await("a change tried more than 3 times, and probes after the breaker opened",
          () -> server.calls.values().stream().anyMatch(count -> count.get() > 3) && server.deliveries() >= beforeOpen + 4);
      var whileDown = call(client, node, HttpMethod.GET, "/v1/_effects").body().path("workers").path("hook");
      assertThat(whileDown.path("deadLettered").asInt()).as("dead-lettered while the target is down").isZero();
      assertThat(whileDown.path("breaker").asText()).isNotEqualTo("closed");
      List<Call> down = server.calls();
      for (int i = beforeOpen + 1; i < down.size(); i++) {
        // The breaker's own period: each probe starts openMs after the previous one failed, which
        // came after it reached the target. Slowness only makes the gap longer.
        assertThat(TimeUnit.NANOSECONDS.toMillis(down.get(i).nanos() - down.get(i - 1).nanos()))
            .as("ms between probes %d and %d while the target is down", i - 1, i).isGreaterThanOrEqualTo(openMs);
      }
      server.down = false;
      await("every change answered with a prompt 2xx", () -> promptlyAnswered(server.calls()).size() == entities * 2);
      var stats = call(client, node, HttpMethod.GET, "/v1/_effects").body().path("workers").path("hook");
      assertThat(stats.path("deadLettered").asInt()).isZero();
      assertThat(stats.path("breaker").asText()).isEqualTo("closed");
      Map<String, Integer> answered = promptlyAnswered(server.calls());
      for (int e = 0; e < entities; e++) {
        assertThat(answered.get("k" + e + ":1")).as("k%d:1 answered before k%d:2", e, e).isLessThan(answered.get("k" + e + ":2"));
      }
    } finally {
      client.close();
      node.stop().await(60, TimeUnit.SECONDS);
      server.close();
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  @Test
  @DisplayName("at-most-once against a target that answers 503, and one that is down: each change is tried exactly once,"
      + " then dead-lettered, never retried; the later changes of its entity are parked untried")
  void atMostOnceTriesOnce() throws Exception {
    Vertx vertx = Vertx.vertx();
    TargetServer server = new TargetServer(vertx);
    server.down = true;
    String app = TestNodes.newApp("amofail");
    // Retries and a breaker that would allow them: at-most-once must not use them.
    String settings = "  delivery: at-most-once\n  entities: [users]\n  timeoutMs: 1000\n"
        + "  retry: { attempts: 5, initialDelayMs: 10, maxDelayMs: 50 }\n"
        + "  breaker: { failures: 1000, openMs: 1000 }\n";
    String workers = "failing:\n  kind: http\n" + settings + "  target: { url: \"" + server.url() + "\" }\n"
        + "unreachable:\n  kind: http\n" + settings
        + "  target: { url: \"http://127.0.0.1:" + LocalBroker.freePort() + "/nobody\" }\n";
    NodeConfig config = NodeConfig.load(TestNodes.envWithEffects(app, TestNodes.tempDir("amofail"), workers));
    NodeRuntime node = TestNodes.startCaughtUp(vertx, config);
    WebClient client = WebClient.create(vertx);
    int entities = 10;
    try {
      for (int e = 0; e < entities; e++) {
        produce(config, "f" + e, "{\"n\":1}", "{\"n\":2}");
      }
      // A change is dead-lettered when the worker is done with it: a retry would have come before.
      await("each entity's first change dead-lettered and its second parked, by both workers", () -> {
        var workerStats = effects(client, node);
        return workerStats.path("failing").path("deadLettered").asInt() == entities
            && workerStats.path("failing").path("parked").asInt() == entities
            && workerStats.path("unreachable").path("deadLettered").asInt() == entities
            && workerStats.path("unreachable").path("parked").asInt() == entities;
      });
      Map<String, Integer> callsByChange = new TreeMap<>();
      server.calls().forEach(call -> callsByChange.merge(call.changeId(), 1, Integer::sum));
      Map<String, Integer> once = new TreeMap<>();
      for (int e = 0; e < entities; e++) {
        once.put("f" + e + ":1", 1);
      }
      assertThat(callsByChange).as("calls per change at the target answering 503").isEqualTo(once);
      for (String worker : List.of("failing", "unreachable")) {
        assertThat(effects(client, node).path(worker).path("retried").asInt()).as("%s: retried", worker).isZero();
        var parked = call(client, node, HttpMethod.GET, "/v1/_effects/" + worker + "/parked").body().path("parked");
        assertThat(parked).hasSize(entities);
        for (var entity : parked) {
          var deadLetter = entity.path("events").get(0);
          assertThat(deadLetter.path("id").asText()).isEqualTo(entity.path("key").asText() + ":1");
          assertThat(deadLetter.path("attempts").asInt()).as("%s: attempts at %s", worker, deadLetter.path("id")).isEqualTo(1);
          assertThat(deadLetter.path("error").asText()).contains("at-most-once, not retried");
        }
      }
    } finally {
      client.close();
      node.stop().await(60, TimeUnit.SECONDS);
      server.close();
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  /** The change ids that got a prompt 2xx, each with the place of the first such call in the order received. */
  static Map<String, Integer> promptlyAnswered(List<Call> calls) {
    Map<String, Integer> answered = new HashMap<>();
    calls.stream().filter(call -> call.answer() == TargetServer.Answer.OK)
        .forEach(call -> answered.putIfAbsent(call.changeId(), call.seq()));
    return answered;
  }

  private static com.fasterxml.jackson.databind.JsonNode effects(WebClient client, NodeRuntime node) {
    try {
      return call(client, node, HttpMethod.GET, "/v1/_effects").body().path("workers");
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  private static Reply call(WebClient client, NodeRuntime node, HttpMethod method, String path) throws Exception {
    return TestNodes.call(client, method, node.httpPort(), path, null, Map.of());
  }
}
