package io.kfold.cluster;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import io.kfold.InterceptedStore;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.types.Envelopes;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.WebClient;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A node that gets a partition back keeps, in its store, the states it folded before it left: until
 * it has folded what the partition gained meanwhile, they are older than what the node that folded
 * it in between answered. A read of such an entity (not {@code stale=true}) waits until the node is
 * current on the partition, or answers 503; it never answers the older state.
 */
@ExtendWith(TestBroker.class)
class CurrentReadsTest {

  /** Events of other entities ahead of each entity's second event: what the returning node folds first. */
  private static final int FILLER = 3_000;

  @Test
  @DisplayName("a node that gets partitions back answers a read of their entities only once it has caught up on"
      + " them: never the state it folded before it left")
  void readsWaitUntilTheNodeIsCurrent() throws Exception {
    String app = TestNodes.newApp("current-reads");
    Map<String, String> envA = TestNodes.quickRebalances(TestNodes.env(app, TestNodes.tempDir("current-reads-a")));
    envA.put("KFOLD_FOLD_STANDBY_REPLICAS", "0");
    Map<String, String> envB = new HashMap<>(envA);
    envB.put("KFOLD_DATA_DIR", TestNodes.tempDir("current-reads-b").toString());
    NodeConfig configA = NodeConfig.load(envA);
    NodeConfig configB = NodeConfig.load(envB);
    String topic = configA.eventsTopic("users");
    Vertx vertx = Vertx.vertx();
    WebClient client = WebClient.create(vertx);
    try (KafkaProducer<byte[], byte[]> producer = TestNodes.plainProducer()) {
      // One entity per partition.
      Ownership placing = new Ownership(configA, Map.of("users", 4), null);
      Map<TopicPartition, String> keys = new HashMap<>();
      for (int i = 0; keys.size() < 4; i++) {
        keys.putIfAbsent(placing.partition("users", "u" + i), "u" + i);
      }

      // Node B alone folds version 1 of each, then leaves.
      NodeRuntime b = TestNodes.startCaughtUp(vertx, configB);
      keys.values().forEach(key -> send(producer, topic, key, 1));
      producer.flush();
      for (String key : keys.values()) {
        awaitVersion(b, key, 1);
      }
      b.stop().await(60, TimeUnit.SECONDS);

      // Node A alone takes every partition over, folds many other entities' events and then version 2
      // of each entity, and answers version 2.
      NodeRuntime a = TestNodes.startCaughtUp(vertx, configA);
      for (Map.Entry<TopicPartition, String> entity : keys.entrySet()) {
        int sent = 0;
        for (int i = 0; sent < FILLER; i++) {
          if (placing.partition("users", "f" + i).equals(entity.getKey())) {
            send(producer, topic, "f" + i, sent++);
          }
        }
        send(producer, topic, entity.getValue(), 2);
      }
      producer.flush();
      for (String key : keys.values()) {
        awaitVersion(a, key, 2);
        Reply read = TestNodes.call(client, HttpMethod.GET, a.httpPort(), "/v1/users/" + key, null, Map.of());
        assertThat(read.body().path("version").asLong()).as("node A's answer for %s", key).isEqualTo(2);
      }

      // Node B comes back on its old store, and folds slowly (0.2 ms per item): the group gives it
      // some partitions back, whose events since it left it must fold before it is current.
      NodeRuntime back = NodeRuntime.start(vertx, configB, NodeRuntime.Options.DEFAULTS.withStore(store ->
          new InterceptedStore(store, batch -> LockSupport.parkNanos(batch.size() * 200_000L))))
          .await(60, TimeUnit.SECONDS);
      List<String> older = new ArrayList<>();
      int readsWhileCatchingUp = 0;
      long deadline = System.currentTimeMillis() + 90_000;
      while (!back.progress().caughtUp() || back.progress().lag().isEmpty()) {
        assertThat(System.currentTimeMillis()).as("node B catches up on the partitions it got back").isLessThan(deadline);
        for (Map.Entry<TopicPartition, String> entity : keys.entrySet()) {
          TopicPartition partition = entity.getKey();
          boolean catchingUp = back.progress().folds(partition) && !back.progress().current(partition);
          Reply read = TestNodes.call(client, HttpMethod.GET, back.httpPort(), "/v1/users/" + entity.getValue(), null,
              Map.of());
          if (catchingUp) {
            readsWhileCatchingUp++;
          }
          if (read.status() != 503 && !(read.status() == 200 && read.body().path("version").asLong() == 2)) {
            older.add(entity.getValue() + ": " + read.status() + " " + read.body());
          }
        }
      }
      assertThat(readsWhileCatchingUp).as("reads sent to node B while it was catching up on a partition it got back")
          .isPositive();
      assertThat(older).as("answers other than version 2 or 503 from node B while it caught up").isEmpty();
      back.stop().await(60, TimeUnit.SECONDS);
      a.stop().await(60, TimeUnit.SECONDS);
    } finally {
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  private static void send(KafkaProducer<byte[], byte[]> producer, String topic, String key, int n) {
    producer.send(new ProducerRecord<>(topic, key.getBytes(StandardCharsets.UTF_8),
        Envelopes.toBytes(JsonNodeFactory.instance.objectNode().put("n", n))));
  }

  private static void awaitVersion(NodeRuntime node, String key, long version) throws InterruptedException {
    long deadline = System.currentTimeMillis() + 60_000;
    while (node.store().get("users", key) == null || node.store().get("users", key).version() < version) {
      assertThat(System.currentTimeMillis()).as("%s at version %d", key, version).isLessThan(deadline);
      Thread.sleep(20);
    }
  }
}
