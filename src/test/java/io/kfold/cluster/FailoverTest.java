package io.kfold.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.KfoldProcess;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Three kfold processes share the partitions; one is killed with SIGKILL under a steady command
 * load sent to another. Its partitions move to the survivors, which go on from their warm standby
 * copies, or restore them from the changelog when they have none.
 *
 * <p>It prints how long commands were slow after the kill. To compare, run it with
 * {@code -Dfailover.standbys=0} (no standby copies) and {@code -Dfailover.preload=N} (N user events
 * produced before the nodes start, a store to hand over; 20,000 by default).
 */
@ExtendWith(TestBroker.class)
class FailoverTest {

  private static final Logger LOG = LoggerFactory.getLogger(FailoverTest.class);
  private static final int ORDERS = 24;

  private final ClusterClient cluster = new ClusterClient();

  @Test
  @DisplayName("kill -9 one of three nodes under load: no acknowledged command lost or applied twice, and its entities answer again")
  void killOneOfThree() throws Exception {
    String app = TestNodes.newApp("failover");
    List<KfoldProcess> nodes = ClusterClient.processes(app, "failover", 6000,
        Map.of("KFOLD_FOLD_STANDBY_REPLICAS", System.getProperty("failover.standbys", "1")));
    int preload = Integer.getInteger("failover.preload", 20_000);
    try {
      for (KfoldProcess node : nodes) {
        node.start();
      }
      KfoldProcess entry = nodes.get(0);
      ClusterClient.awaitSpread(nodes, Duration.ofSeconds(90));
      // Entities for the killed node's successor to take over.
      try (KafkaProducer<byte[], byte[]> outside = TestNodes.plainProducer()) {
        for (int e = 0; e < preload; e++) {
          outside.send(new ProducerRecord<>(app + ".users.events", ("u" + e % 2000).getBytes(StandardCharsets.UTF_8),
              ("{\"n\":" + e + ",\"f" + e % 20 + "\":\"" + "x".repeat(100) + "\"}").getBytes(StandardCharsets.UTF_8)));
        }
      }
      for (KfoldProcess node : nodes) {
        node.awaitStatus("/ready", 200);
      }
      Map<String, List<String>> acknowledged = new HashMap<>();
      for (int o = 0; o < ORDERS; o++) {
        acknowledged.put("f" + o, new ArrayList<>());
        cluster.command(entry.port(), "f" + o, "{\"type\":\"place\",\"payload\":{\"customerEmail\":\"a@b.c\","
            + "\"items\":[{\"sku\":\"x\",\"quantity\":1,\"price\":1}]}}", UUID.randomUUID().toString());
      }
      long killedAt = 0;
      long lastSlow = 0;
      int sent = 0;
      long stopAt = System.currentTimeMillis() + 25_000;
      while (System.currentTimeMillis() < stopAt) {
        if (killedAt == 0 && sent == ORDERS * 3) {
          nodes.get(2).kill();
          killedAt = System.currentTimeMillis();
          LOG.info("killed node 2 after {} comments", sent);
        }
        String order = "f" + (sent % ORDERS);
        String text = "c" + sent;
        long started = System.currentTimeMillis();
        cluster.command(entry.port(), order, "{\"type\":\"comment\",\"payload\":{\"text\":\"" + text + "\"}}", UUID.randomUUID().toString());
        if (System.currentTimeMillis() - started > 1000) {
          lastSlow = System.currentTimeMillis();
        }
        acknowledged.get(order).add(text);
        sent++;
      }
      assertThat(killedAt).as("the kill happened").isPositive();
      LOG.info("failover ({} standby replicas, {} user events preloaded): {} comments acknowledged; commands were"
          + " slow (>1 s) until {} ms after the kill", System.getProperty("failover.standbys", "1"), preload, sent,
          lastSlow == 0 ? 0 : lastSlow - killedAt);
      for (int o = 0; o < ORDERS; o++) {
        String order = "f" + o;
        JsonNode state = ClusterClient.get(entry, "/v1/orders/" + order);
        List<String> comments = new ArrayList<>();
        state.path("state").path("comments").forEach(c -> comments.add(c.asText()));
        assertThat(comments).as("comments of %s: each acknowledged one, once, in order", order)
            .isEqualTo(acknowledged.get(order));
        assertThat(state.path("version").asLong()).isEqualTo(1 + comments.size());
        JsonNode events = ClusterClient.get(nodes.get(1), "/v1/orders/" + order + "/events?limit=1000").path("events");
        for (int v = 0; v < events.size(); v++) {
          assertThat(events.get(v).path("version").asLong()).isEqualTo(v + 1);
        }
      }
    } finally {
      for (KfoldProcess node : nodes) {
        node.stopIfAlive();
      }
    }
  }
}
