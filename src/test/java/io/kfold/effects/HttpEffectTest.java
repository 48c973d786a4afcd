package io.kfold.effects;

import io.kfold.KfoldConfig;
import io.kfold.KfoldNode;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
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
import java.util.List;
import java.util.Map;
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

  private static void produce(KfoldConfig config, String key, String... payloads) {
    produceTo(config, "users", key, payloads);
  }

  private static void produceTo(KfoldConfig config, String type, String key, String... payloads) {
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
  @DisplayName("at-least-once against a server failing 30% of calls: every change delivered, applied once, in order per entity")
  void atLeastOnceThroughFailures() throws Exception {
    Vertx vertx = Vertx.vertx();
    TargetServer server = new TargetServer(vertx);
    server.failureRate = 0.3;
    String app = TestNodes.newApp("hook");
    Path dir = TestNodes.tempDir("hook");
    KfoldConfig config = KfoldConfig.load(TestNodes.envWithEffects(app, dir, worker(server.url(), "  delivery: at-least-once\n")));
    KfoldNode node = TestNodes.startCaughtUp(vertx, config);
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
      await("every change applied", () -> server.applied.size() == entities * perEntity);
      for (int e = 0; e < entities; e++) {
        List<Long> expected = new ArrayList<>();
        for (long v = 1; v <= perEntity; v++) {
          expected.add(v);
        }
        assertThat(server.appliedVersions.get("u" + e)).as("order of u%d", e).isEqualTo(expected);
      }
      assertThat(server.deliveries()).as("failures were retried").isGreaterThan(entities * perEntity);
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
    KfoldConfig config = KfoldConfig.load(TestNodes.envWithEffects(app, TestNodes.tempDir("twotypes"), worker));
    KfoldNode node = TestNodes.startCaughtUp(vertx, config);
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
    KfoldConfig config = KfoldConfig.load(TestNodes.envWithEffects(app, TestNodes.tempDir("park"),
        worker(server.url(), "")));
    KfoldNode node = TestNodes.startCaughtUp(vertx, config);
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
  @DisplayName("while the target is down the breaker pauses the worker: no attempts burned, nothing dead-lettered, all delivered once it is back")
  void breakerWaitsForTheTarget() throws Exception {
    Vertx vertx = Vertx.vertx();
    TargetServer server = new TargetServer(vertx);
    server.down = true;
    String app = TestNodes.newApp("breaker");
    String worker = "hook:\n  kind: http\n  entities: [users]\n  timeoutMs: 1000\n"
        + "  retry: { attempts: 3, initialDelayMs: 10, maxDelayMs: 50 }\n"
        + "  breaker: { failures: 3, openMs: 300 }\n"
        + "  target: { url: \"" + server.url() + "\" }\n";
    KfoldConfig config = KfoldConfig.load(TestNodes.envWithEffects(app, TestNodes.tempDir("breaker"), worker));
    KfoldNode node = TestNodes.startCaughtUp(vertx, config);
    WebClient client = WebClient.create(vertx);
    try {
      for (int e = 0; e < 10; e++) {
        produce(config, "k" + e, "{\"n\":1}", "{\"n\":2}");
      }
      await("the breaker opens", () -> {
        try {
          return call(client, node, HttpMethod.GET, "/v1/_effects").body().path("workers").path("hook").path("breaker")
              .asText().equals("open");
        } catch (Exception e) {
          throw new IllegalStateException(e);
        }
      });
      Thread.sleep(2_000);  // several probes fail meanwhile, far more failures than 3 attempts per change
      int callsWhileDown = server.deliveries();
      assertThat(callsWhileDown).as("paused, not hammering the target").isLessThan(60);
      server.down = false;
      await("every change applied", () -> server.applied.size() == 20);
      var stats = call(client, node, HttpMethod.GET, "/v1/_effects").body().path("workers").path("hook");
      assertThat(stats.path("deadLettered").asInt()).isZero();
      assertThat(stats.path("breaker").asText()).isEqualTo("closed");
      for (int e = 0; e < 10; e++) {
        assertThat(server.appliedVersions.get("k" + e)).containsExactly(1L, 2L);
      }
    } finally {
      client.close();
      node.stop().await(60, TimeUnit.SECONDS);
      server.close();
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  private static Reply call(WebClient client, KfoldNode node, HttpMethod method, String path) throws Exception {
    return TestNodes.call(client, method, node.httpPort(), path, null, Map.of());
  }
}
