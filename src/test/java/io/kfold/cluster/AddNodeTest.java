package io.kfold.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.config.NodeConfig;
import io.kfold.KfoldProcess;
import io.kfold.TestBroker;
import io.kfold.TestLog;
import io.kfold.TestNodes;
import io.kfold.types.Envelopes;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * One kfold process serves a steady command load; a second and then a third join the group while
 * it runs, so partitions move twice, with commands in flight on them. Writers send through the
 * nodes that are ready, in turn, and retry with the same idempotency key until acknowledged.
 */
@ExtendWith(TestBroker.class)
class AddNodeTest {

  private static final Logger LOG = LoggerFactory.getLogger(AddNodeTest.class);
  private static final int ORDERS = 24;
  /** Concurrent writers; each owns a share of the orders and sends their comments one at a time. */
  private static final int WRITERS = 4;
  /** Comments acknowledged between two changes of the cluster. */
  private static final int COMMENTS_BETWEEN = 60;
  private static final long SLOW_MS = 1000;
  /** A writer's pause between two commands: a steady load that leaves the joining nodes some CPU. */
  private static final long PAUSE_MS = 20;

  /** One acknowledged comment: the event and version its answer named, and when it was sent and answered. */
  private record Acknowledged(String order, String text, long version, String eventId, long sentAt, long answeredAt) {}

  private final ClusterClient cluster = new ClusterClient();

  @Test
  @DisplayName("a second and a third node join under load: no acknowledged command lost or applied twice, none refused,"
      + " and the partitions end spread over the three")
  void addTwoNodesUnderLoad() throws Exception {
    String app = TestNodes.newApp("addnode");
    NodeConfig config = TestNodes.config(app, TestNodes.tempDir("addnode-config"));
    List<KfoldProcess> nodes = ClusterClient.processes(app, "addnode", 10_000, Map.of());
    ExecutorService writers = Executors.newFixedThreadPool(WRITERS);
    AtomicBoolean stop = new AtomicBoolean();
    try {
      nodes.get(0).start();
      nodes.get(0).awaitStatus("/ready", 200);
      ClusterClient.awaitSpread(nodes.subList(0, 1), Duration.ofSeconds(60));
      for (int o = 0; o < ORDERS; o++) {
        cluster.command(nodes.get(0).port(), order(o), "{\"type\":\"place\",\"payload\":{\"customerEmail\":\"a@b.c\","
            + "\"items\":[{\"sku\":\"x\",\"quantity\":1,\"price\":1}]}}", UUID.randomUUID().toString());
      }

      // A node joins the writers' rotation once it is ready, as behind a load balancer.
      List<Integer> rotation = new CopyOnWriteArrayList<>(List.of(nodes.get(0).port()));
      ConcurrentLinkedQueue<Acknowledged> acknowledged = new ConcurrentLinkedQueue<>();
      List<Future<?>> load = new ArrayList<>();
      for (int w = 0; w < WRITERS; w++) {
        int writer = w;
        load.add(writers.submit(() -> {
          write(writer, rotation, stop, acknowledged);
          return null;
        }));
      }
      long[] launchedAt = new long[3];
      long[] readyAt = new long[3];
      long[] spreadAt = new long[3];
      for (int k = 1; k < 3; k++) {
        awaitAcknowledged(acknowledged, acknowledged.size() + COMMENTS_BETWEEN, load);
        launchedAt[k] = System.currentTimeMillis();
        nodes.get(k).start();
        nodes.get(k).awaitStatus("/ready", 200);
        readyAt[k] = System.currentTimeMillis();
        rotation.add(nodes.get(k).port());
        ClusterClient.awaitSpread(nodes.subList(0, k + 1), Duration.ofSeconds(60));
        spreadAt[k] = System.currentTimeMillis();
        LOG.info("node {} started: ready after {} ms, the partitions spread over {} nodes after {} ms", k,
            readyAt[k] - launchedAt[k], k + 1, spreadAt[k] - launchedAt[k]);
      }
      awaitAcknowledged(acknowledged, acknowledged.size() + COMMENTS_BETWEEN, load);
      stop.set(true);
      for (Future<?> writer : load) {
        writer.get(90, TimeUnit.SECONDS);  // each finishes the command it is sending, acknowledged
      }
      report(List.copyOf(acknowledged), launchedAt);
      LOG.info("commands sent again until acknowledged, by the answer that made the writer retry: {}", cluster.retried());

      ClusterClient.awaitSpread(nodes, Duration.ofSeconds(30));
      assertLogHoldsEachAcknowledgedOnce(config.eventsTopic("orders"), List.copyOf(acknowledged), nodes);
      // A comment on a placed order is never refused, however its partition moves: a writer may only be
      // told to come back (503, 504, a connection refused or timed out).
      assertThat(cluster.retried().keySet()).as("what made writers retry").noneMatch(answer -> answer.matches("4\\d\\d"));
    } finally {
      stop.set(true);
      writers.shutdownNow();
      ClusterClient.stopAll(nodes);
    }
  }

  private static String order(int o) {
    return "a" + o;
  }

  /** One writer: comments on its own orders in turn, each through the next ready node, until stopped. */
  private void write(int writer, List<Integer> rotation, AtomicBoolean stop, ConcurrentLinkedQueue<Acknowledged> acknowledged)
      throws Exception {
    for (int n = 0; !stop.get(); n++) {
      String order = order(writer + WRITERS * (n % (ORDERS / WRITERS)));
      String text = "w" + writer + "-" + n;
      int port = rotation.get((writer + n) % rotation.size());
      long sentAt = System.currentTimeMillis();
      JsonNode answer = cluster.command(port, order, "{\"type\":\"comment\",\"payload\":{\"text\":\"" + text + "\"}}",
          UUID.randomUUID().toString());
      assertThat(answer.path("events")).as("events of the comment %s on %s", text, order).hasSize(1);
      acknowledged.add(new Acknowledged(order, text, answer.path("version").asLong(),
          answer.path("events").get(0).path("id").asText(), sentAt, System.currentTimeMillis()));
      Thread.sleep(PAUSE_MS);
    }
  }

  /** Waits until {@code count} comments are acknowledged, failing early when a writer failed. */
  private static void awaitAcknowledged(ConcurrentLinkedQueue<Acknowledged> acknowledged, int count, List<Future<?>> load)
      throws Exception {
    long deadline = System.currentTimeMillis() + 60_000;
    while (acknowledged.size() < count) {
      for (Future<?> writer : load) {
        if (writer.isDone()) {
          writer.get();  // throws what failed it
          throw new AssertionError("a writer stopped");
        }
      }
      assertThat(System.currentTimeMillis()).as("%d comments acknowledged", count).isLessThan(deadline);
      Thread.sleep(50);
    }
  }

  /**
   * Logs, for each node that joined, how many of the commands sent from its launch to the next one
   * were slow, and from when to when: its handover.
   */
  private static void report(List<Acknowledged> acknowledged, long[] launchedAt) {
    for (int k = 1; k < launchedAt.length; k++) {
      long from = launchedAt[k];
      long to = k + 1 < launchedAt.length ? launchedAt[k + 1] : Long.MAX_VALUE;
      List<Acknowledged> during = acknowledged.stream().filter(a -> a.sentAt() >= from && a.sentAt() < to).toList();
      List<Acknowledged> slow = during.stream().filter(a -> a.answeredAt() - a.sentAt() > SLOW_MS).toList();
      long slowFrom = slow.stream().mapToLong(a -> a.sentAt() - from).min().orElse(0);
      long slowUntil = slow.stream().mapToLong(a -> a.answeredAt() - from).max().orElse(0);
      LOG.info("handover to {} nodes: {} comments acknowledged, {} slow (>{} ms), the slowest {} ms; commands were slow"
              + " for {} ms, from {} to {} ms after the node was launched", k + 1, during.size(), slow.size(), SLOW_MS,
          during.stream().mapToLong(a -> a.answeredAt() - a.sentAt()).max().orElse(0), slowUntil - slowFrom, slowFrom,
          slowUntil);
    }
  }

  /**
   * Folds the log by the version rules: an event of the next version is applied, one of a version
   * taken already lost a race (a retry that a node decided before it had folded the first try) and
   * is skipped; no event may skip a version. The applied comments of each order are exactly its
   * acknowledged ones, in order, each the very event its answer named; and every node answers the same.
   */
  private static void assertLogHoldsEachAcknowledgedOnce(String eventsTopic, List<Acknowledged> acknowledged,
                                                         List<KfoldProcess> nodes) throws Exception {
    Map<String, List<JsonNode>> log = new HashMap<>();
    for (ConsumerRecord<byte[], byte[]> record : TestLog.records(eventsTopic)) {
      JsonNode event = Envelopes.parse(record.value());
      log.computeIfAbsent(event.path("key").asText(), k -> new ArrayList<>()).add(event);
    }
    Map<String, List<Acknowledged>> byOrder = new HashMap<>();
    acknowledged.forEach(a -> byOrder.computeIfAbsent(a.order(), k -> new ArrayList<>()).add(a));
    int raceLosers = 0;
    for (int o = 0; o < ORDERS; o++) {
      String order = order(o);
      List<JsonNode> applied = new ArrayList<>();
      for (JsonNode event : log.get(order)) {
        long version = event.path("version").asLong();
        assertThat(version).as("version of an event of %s in the log: the next, or one taken already", order)
            .isBetween(1L, applied.size() + 1L);
        if (version == applied.size() + 1) {
          applied.add(event);
        } else {
          raceLosers++;
        }
      }
      assertThat(applied.get(0).path("type").asText()).isEqualTo("OrderPlaced");
      List<String> appliedComments = applied.subList(1, applied.size()).stream()
          .map(e -> e.path("payload").path("text").asText()).toList();
      List<Acknowledged> mine = byOrder.getOrDefault(order, List.of());
      assertThat(appliedComments).as("comments of %s the log applies: each acknowledged one, once, in order", order)
          .isEqualTo(mine.stream().map(Acknowledged::text).toList());
      for (Acknowledged ack : mine) {
        assertThat(applied.get((int) ack.version() - 1).path("id").asText())
            .as("the event at version %d of %s is the one acknowledged for %s", ack.version(), order, ack.text())
            .isEqualTo(ack.eventId());
      }
      for (KfoldProcess node : nodes) {
        // The node that folds the order now may have taken it over after its last comment: read your writes.
        JsonNode state = ClusterClient.get(node, "/v1/orders/" + order + "?minVersion=" + applied.size() + "&timeoutMs=10000");
        assertThat(state.path("version").asLong()).as("version of %s through the node on port %d", order, node.port())
            .isEqualTo(applied.size());
        List<String> comments = new ArrayList<>();
        state.path("state").path("comments").forEach(c -> comments.add(c.asText()));
        assertThat(comments).as("comments of %s through the node on port %d", order, node.port()).isEqualTo(appliedComments);
      }
    }
    LOG.info("{} comments acknowledged, each applied once; {} events in the log lost a race and were skipped",
        acknowledged.size(), raceLosers);
  }
}
