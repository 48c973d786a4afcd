package io.kfold.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.EventBusCluster;
import io.kfold.KfoldConfig;
import io.kfold.config.NodeConfig;
import io.kfold.KfoldProcess;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.log.LocalBroker;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.EventBus;
import io.vertx.core.eventbus.MessageConsumer;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.eventbus.ReplyFailure;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Two kfold processes share the partitions and one Vert.x cluster (Hazelcast on 127.0.0.1, members
 * named, no multicast); this JVM joins the cluster as another application would, and uses kfold
 * over the event bus alone.
 */
@ExtendWith(TestBroker.class)
class ClusteredBusTest {

  private static final DeliveryOptions PATIENT = new DeliveryOptions().setSendTimeout(30_000);

  private static String app;
  private static final List<KfoldProcess> nodes = new ArrayList<>();
  private static Vertx application;

  @BeforeAll
  static void startCluster() throws Exception {
    app = TestNodes.newApp("bus");
    List<Integer> ports = List.of(LocalBroker.freePort(), LocalBroker.freePort(), LocalBroker.freePort());
    String members = ports.stream().map(p -> "127.0.0.1:" + p).collect(Collectors.joining(","));
    // This JVM first: the nodes then join a cluster that is already there, instead of two of them
    // starting at once and each founding a cluster of its own.
    Map<String, String> applicationEnv = clusterEnv(TestNodes.env(app, TestNodes.tempDir("bus-app")), ports.get(2), members);
    application = EventBusCluster.join(KfoldConfig.load(applicationEnv)).await(60, TimeUnit.SECONDS);
    for (int i = 0; i < 2; i++) {
      Map<String, String> env = clusterEnv(TestNodes.quickRebalances(TestNodes.env(app, TestNodes.tempDir("bus-" + i))),
          ports.get(i), members);
      nodes.add(new KfoldProcess(env, Path.of("target", "bus-" + app + "-" + i + ".log")));
    }
    ExecutorService threads = Executors.newFixedThreadPool(2);
    try {
      ClusterClient.startAll(nodes, threads);
    } finally {
      threads.shutdownNow();
    }
  }

  private static Map<String, String> clusterEnv(Map<String, String> env, int port, String members) {
    Map<String, String> withCluster = new HashMap<>(env);
    withCluster.put("KFOLD_EVENT_BUS_CLUSTER_ENABLED", "true");
    withCluster.put("KFOLD_EVENT_BUS_CLUSTER_HOST", "127.0.0.1");
    withCluster.put("KFOLD_EVENT_BUS_CLUSTER_PORT", Integer.toString(port));
    withCluster.put("KFOLD_EVENT_BUS_CLUSTER_MEMBERS", members);
    return withCluster;
  }

  @AfterAll
  static void stopCluster() throws Exception {
    try {
      ClusterClient.stopAll(nodes);
    } finally {
      if (application != null) {
        application.close().await(30, TimeUnit.SECONDS);
      }
    }
  }

  @Test
  @DisplayName("another JVM commands entities of both nodes over the bus: each decided once by its owner, each change"
      + " received once, each read answered with the owner's state")
  void commandsReadsAndChangesOverTheClusteredBus() throws Exception {
    EventBus bus = application.eventBus();
    List<JsonObject> changes = new CopyOnWriteArrayList<>();
    MessageConsumer<Buffer> following = bus.consumer("kfold.orders.changes", m -> changes.add(m.body().toJsonObject()));
    following.completion().await(30, TimeUnit.SECONDS);

    // Three orders on each node's partitions, and one more each as the last one written there.
    String topic = app + ".orders.events";
    Map<String, KfoldProcess> owners = new LinkedHashMap<>();
    Map<KfoldProcess, String> sentinels = new HashMap<>();
    Map<KfoldProcess, List<TopicPartition>> partitions = new HashMap<>();
    for (KfoldProcess node : nodes) {
      partitions.put(node, ClusterClient.partitionsOf(node, topic));
    }
    for (int i = 0; owners.size() < 6 || sentinels.size() < 2; i++) {
      String order = "bus-" + i;
      KfoldProcess owner = nodes.stream().filter(n -> ClusterClient.in(partitions.get(n), order)).findFirst().orElseThrow();
      if (owners.values().stream().filter(owner::equals).count() < 3) {
        owners.put(order, owner);
      } else {
        sentinels.putIfAbsent(owner, order);
      }
    }

    Map<String, Long> accepted = new HashMap<>();
    for (String order : owners.keySet()) {
      JsonObject placed = request(bus, "kfold.orders.command", place(order));
      JsonObject commented = request(bus, "kfold.orders.command", new JsonObject().put("key", order).put("type", "comment")
          .put("payload", new JsonObject().put("text", "over the cluster")).put("expectedVersion", placed.getLong("version")));
      ReplyException unpaid = failure(bus, "kfold.orders.command", new JsonObject().put("key", order).put("type", "ship"));
      assertThat(unpaid.failureCode()).as("shipping unpaid %s", order).isEqualTo(422);
      assertThat(unpaid.getMessage()).contains("unpaid");
      accepted.put(order, commented.getLong("version"));
    }
    assertThat(accepted).as("versions after place and comment").allSatisfy((order, version) -> assertThat(version).isEqualTo(2L));

    // Sent round-robin to either node, each read comes from the owner's store.
    for (int round = 0; round < 2; round++) {
      for (String order : owners.keySet()) {
        JsonObject read = request(bus, "kfold.orders.get", new JsonObject().put("key", order));
        assertThat(read.getLong("version")).as("version of %s read over the bus", order).isEqualTo(2L);
        assertThat(read.getJsonObject("state").getJsonArray("comments")).as("comments of %s", order).hasSize(1);
      }
    }

    // Each entity's history, read from its owner, holds exactly the accepted events.
    for (Map.Entry<String, KfoldProcess> order : owners.entrySet()) {
      JsonNode history = ClusterClient.get(order.getValue(), "/v1/orders/" + order.getKey() + "/events");
      List<String> types = new ArrayList<>();
      history.path("events").forEach(e -> types.add(e.path("type").asText()));
      assertThat(types).as("history of %s", order.getKey()).containsExactly("OrderPlaced", "OrderCommented");
    }

    // A node publishes its changes in the order it folds them: once its last order's change is here, so are the
    // changes it published before, and any copy of them.
    for (String sentinel : sentinels.values()) {
      request(bus, "kfold.orders.command", place(sentinel));
    }
    long deadline = System.currentTimeMillis() + 30_000;
    while (!changes.stream().map(ClusteredBusTest::changeKey).toList().containsAll(sentinels.values())) {
      assertThat(System.currentTimeMillis()).as("the sentinels' changes arrive; received %s", changes).isLessThan(deadline);
      Thread.sleep(20);
    }
    Map<String, Long> received = changes.stream().filter(c -> owners.containsKey(changeKey(c)))
        .collect(Collectors.groupingBy(c -> c.getString("id"), Collectors.counting()));
    Map<String, Long> expected = new HashMap<>();
    owners.keySet().forEach(order -> {
      expected.put(order + ":1", 1L);
      expected.put(order + ":2", 1L);
    });
    assertThat(received).as("changes received per change id").isEqualTo(expected);
  }

  @Test
  @DisplayName("a node's own addresses (its side-effect workers' parked events) answer its own HTTP API, not other JVMs")
  void workerAddressesStayOnTheirNode() throws Exception {
    ReplyException refused = failure(application.eventBus(), "kfold.effects.shipment-request.parked", new JsonObject());
    assertThat(refused.failureType()).as("answer from another JVM: %s", refused.getMessage()).isEqualTo(ReplyFailure.NO_HANDLERS);
    for (KfoldProcess node : nodes) {
      KfoldProcess.Answer parked = node.fetch("/v1/_effects/shipment-request/parked");
      assertThat(parked.status()).as("parked on the node on port %d: %s", node.port(), parked.body()).isEqualTo(200);
    }
  }

  private static String changeKey(JsonObject change) {
    return change.getJsonObject("event").getString("key");
  }

  private static JsonObject place(String order) {
    return new JsonObject().put("key", order).put("type", "place").put("payload", new JsonObject()
        .put("customerEmail", order + "@example.com")
        .put("items", new JsonArray().add(new JsonObject().put("sku", "mug").put("quantity", 1).put("price", 4.5))));
  }

  private static JsonObject request(EventBus bus, String address, JsonObject body) throws Exception {
    return bus.<JsonObject>request(address, body, PATIENT).await(40, TimeUnit.SECONDS).body();
  }

  private static ReplyException failure(EventBus bus, String address, JsonObject body) throws Exception {
    Throwable cause = bus.request(address, body, PATIENT)
        .transform(ar -> Future.succeededFuture(ar.failed() ? ar.cause() : null)).await(40, TimeUnit.SECONDS);
    assertThat(cause).as("%s %s fails", address, body).isInstanceOf(ReplyException.class);
    return (ReplyException) cause;
  }
}
