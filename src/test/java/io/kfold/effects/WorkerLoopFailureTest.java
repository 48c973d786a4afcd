package io.kfold.effects;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.WebClient;
import io.kfold.log.BalancedAssignor;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.errors.FencedInstanceIdException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static io.kfold.effects.HttpEffectTest.await;
import static org.assertj.core.api.Assertions.assertThat;

@ExtendWith(TestBroker.class)
class WorkerLoopFailureTest {

  @Test
  @DisplayName("a worker whose consumer is fenced by another process with the same group instance id shows it in /health, restarts and delivers again")
  void fencedWorkerRecovers() throws Exception {
    Vertx vertx = Vertx.vertx();
    TargetServer server = new TargetServer(vertx);
    String app = TestNodes.newApp("fenced");
    Map<String, String> env = TestNodes.envWithEffects(app, TestNodes.tempDir("fenced"),
        "hook:\n  kind: http\n  entities: [users]\n  target: { url: \"" + server.url() + "\" }\n");
    env.put("KFOLD_KAFKA_GROUP_INSTANCE_ID", "node-1");
    NodeConfig config = NodeConfig.load(env);
    NodeRuntime node = TestNodes.startCaughtUp(vertx, config);
    WebClient client = WebClient.create(vertx);
    try {
      produce(config, "u1", "{\"n\":1}");
      await("u1:1 delivered", () -> server.appliedVersions.containsKey("u1"));

      // A second process started by mistake with this node's instance id takes its place in the group.
      try (KafkaConsumer<byte[], byte[]> intruder = new KafkaConsumer<>(Map.of(
          ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, TestBroker.bootstrap(),
          ConsumerConfig.GROUP_ID_CONFIG, config.effectGroup("hook"),
          ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "node-1-hook",
          // The group's members all name kfold's assignor: a member without it is refused.
          ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, BalancedAssignor.class.getName(),
          ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false), new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
        intruder.subscribe(List.of(config.changesTopic("users")));
        await("the worker's loop fails and restarts", () -> {
          try {
            intruder.poll(Duration.ofMillis(100));
          } catch (FencedInstanceIdException e) {
            // the restarted worker took its place back
          }
          return worker(client, node).path("restarts").asInt() >= 1;
        });
      }
      JsonNode loop = worker(client, node);
      assertThat(loop.path("lastError").asText()).contains("FencedInstanceIdException");
      await("the worker's loop is up again", () -> worker(client, node).path("state").asText().equals("UP"));

      produce(config, "u1", "{\"n\":2}");
      await("u1:2 delivered after the restart", () -> server.appliedVersions.get("u1").size() == 2);
      assertThat(server.appliedVersions.get("u1")).containsExactly(1L, 2L);
    } finally {
      client.close();
      node.stop().await(60, TimeUnit.SECONDS);
      server.close();
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  /** The worker's loop as {@code /health} shows it. */
  private static JsonNode worker(WebClient client, NodeRuntime node) {
    try {
      return TestNodes.call(client, HttpMethod.GET, node.httpPort(), "/health", null, Map.of()).body()
          .path("loops").path("effects.hook");
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  private static void produce(NodeConfig config, String key, String payload) {
    try (KafkaProducer<byte[], byte[]> producer = TestNodes.plainProducer()) {
      producer.send(new ProducerRecord<>(config.eventsTopic("users"), key.getBytes(StandardCharsets.UTF_8),
          payload.getBytes(StandardCharsets.UTF_8)));
    }
  }
}
