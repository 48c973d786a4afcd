package io.kfold.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.InterceptedStore;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.KfoldProcess;
import io.kfold.RunningNode;
import io.kfold.TestBroker;
import io.kfold.TestLog;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.kfold.store.ChangelogItem;
import io.kfold.store.StoreContents;
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
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SortedMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.IntStream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A node that gets partitions it has no state of restores them from the changelog topic instead of
 * folding the whole events log; a standby keeps a warm copy and takes over without restoring.
 */
@ExtendWith(TestBroker.class)
class ChangelogRestoreTest {

  private static final int USERS = 100;
  private static final int ORDERS = 10;
  private static final List<String> TYPES = List.of("orders", "shipments", "users");
  private static final String PLACE =
      "{\"type\":\"place\",\"payload\":{\"customerEmail\":\"a@b.c\",\"items\":[{\"sku\":\"x\",\"quantity\":1,\"price\":5}]}}";
  private static final String PAY = "{\"type\":\"pay\",\"payload\":{\"amount\":5}}";
  private static final int LONG_RESTORE_EVENTS = 64_000;

  @Test
  @DisplayName("after kill -9 of the node that folded everything, a node without local state restores from the"
      + " changelog a store identical to the dead node's, byte for byte, folds nothing twice, and answers as it did")
  void restoresFromTheChangelog() throws Exception {
    String app = TestNodes.newApp("restore");
    Path dataOfA = TestNodes.tempDir("restore-a");
    NodeConfig first = TestNodes.config(app, dataOfA);
    Map<String, String> states = new HashMap<>();
    Map<String, String> histories = new HashMap<>();
    Reply idempotent;
    KfoldProcess a = process(app, dataOfA, "restore");
    Vertx vertx = Vertx.vertx();
    WebClient client = WebClient.create(vertx);
    try {
      a.start();
      idempotent = writeUsers(client, a.port(), first, "restore");
      writeOrders(client, a.port());
      a.awaitStatus("/ready", 200);
      for (int u = 0; u < USERS; u++) {
        String path = "/v1/users/u" + u;
        states.put("u" + u, call(client, a.port(), path + "?minVersion=5&timeoutMs=10000").body().toString());
        histories.put("u" + u, call(client, a.port(), path + "/events?limit=1000").body().toString());
      }
      // Killed once it has sent all it folded, so that the changelog can hold the whole store.
      awaitChangelogComplete(first);
      a.kill();
    } finally {
      a.stopIfAlive();
      client.close();
      vertx.close().await(30, TimeUnit.SECONDS);
    }
    SortedMap<String, SortedMap<String, String>> original = StoreContents.read(dataOfA.resolve("store"));
    int eventsInLog = TestLog.records(first.eventsTopic("users")).size();

    NodeConfig second = TestNodes.config(app, TestNodes.tempDir("restore-b"));
    try (RunningNode b = RunningNode.start(second)) {
      assertThat(b.node().progress().applied.sum()).as("events folded again after the restore").isZero();
      assertSameStore(original, StoreContents.read(second.dataDir().resolve("store")));
      for (int u = 0; u < USERS; u++) {
        assertThat(b.get("/v1/users/u" + u).body().toString()).as("state of u%d", u).isEqualTo(states.get("u" + u));
        assertThat(b.get("/v1/users/u" + u + "/events?limit=1000").body().toString()).as("history of u%d", u)
            .isEqualTo(histories.get("u" + u));
      }
      // The idempotency keys came with the restore: a retry answers the first write and appends nothing.
      Reply retried = b.call(HttpMethod.POST, "/v1/users/u0/events", "{\"events\":[{\"type\":\"Renamed\",\"payload\":{\"n\":1}}]}",
          Map.of("Idempotency-Key", "restore-key"));
      assertThat(retried.status()).isEqualTo(200);
      assertThat(retried.body().path("version").asLong()).isEqualTo(idempotent.body().path("version").asLong());
      // An event without a version after the restore takes the next version, once.
      long before = b.get("/v1/users/u1").body().path("version").asLong();
      try (KafkaProducer<byte[], byte[]> outside = TestNodes.plainProducer()) {
        outside.send(new ProducerRecord<>(first.eventsTopic("users"), bytes("u1"), bytes("{\"after\":true}"))).get();
      }
      Reply after = b.get("/v1/users/u1?minVersion=" + (before + 1) + "&timeoutMs=10000");
      assertThat(after.status()).isEqualTo(200);
      assertThat(after.body().path("version").asLong()).isEqualTo(before + 1);
      assertThat(after.body().path("state").path("after").asBoolean()).isTrue();
      assertThat(b.node().progress().applied.sum()).isEqualTo(1);
    }
    assertThat(TestLog.records(first.eventsTopic("users"))).hasSize(eventsInLog + 1);
  }

  @Test
  @DisplayName("a standby keeps a warm copy from the changelog and answers stale reads of the other node's entities"
      + " from it, marked Kfold-Stale, also while that node is dead; after kill -9 of that node it takes over"
      + " without folding the log again")
  void standbyTakesOver() throws Exception {
    String app = TestNodes.newApp("standby");
    Path dataOfA = TestNodes.tempDir("standby-a");
    NodeConfig first = TestNodes.config(app, dataOfA);
    NodeConfig second = TestNodes.quickRebalancesConfig(app, TestNodes.tempDir("standby-b"));
    KfoldProcess a = process(app, dataOfA, "standby");
    RunningNode b = null;
    try {
      a.start();
      b = RunningNode.start(second);
      writeUsers(b.client, a.port(), first, "standby");
      RunningNode node = b;
      // Each node folds some partitions and keeps a warm copy of the other's.
      await("both nodes fold and keep standbys", () -> {
        JsonNode cluster = ClusterClient.get(a, "/v1/_cluster");
        return !cluster.path("lag").isEmpty() && !cluster.path("standbys").isEmpty()
            && !node.node().progress().standbys().isEmpty() && !node.node().progress().lag().isEmpty();
      });
      a.awaitStatus("/ready", 200);
      TestNodes.awaitCaughtUp(b.node());
      String nameOfA = ClusterClient.get(a, "/v1/_cluster").path("node").asText();
      String nameOfB = b.get("/v1/_cluster").body().path("node").asText();
      Ownership ofB = new Ownership(second, Map.of("users", 4), b.node().progress());
      List<String> ofA = IntStream.range(0, USERS).mapToObj(u -> "u" + u).filter(u -> !ofB.owns("users", u)).toList();
      assertThat(ofA).as("users the other node folds").isNotEmpty().hasSizeLessThan(USERS);
      for (int u = 0; u < USERS; u++) {
        String path = "/v1/users/u" + u;
        Reply owner = call(b.client, a.port(), path);
        boolean elsewhere = ofA.contains("u" + u);
        assertThat(owner.header("Kfold-Node")).as("owner of u%d", u).isEqualTo(elsewhere ? nameOfA : nameOfB);
        // The copy may be behind the owner for a moment: read until it has caught up.
        Reply stale = awaitStaleRead(b, path, owner.body().path("version").asLong());
        assertThat(stale.body()).as("stale read of u%d", u).isEqualTo(owner.body());
        // Answered by the node asked, from its own copy, and says so; what it folds itself is not stale.
        assertThat(stale.header("Kfold-Node")).as("node that answered the stale read of u%d", u).isEqualTo(nameOfB);
        assertThat(stale.header("Kfold-Stale")).as("Kfold-Stale of u%d", u).isEqualTo(elsewhere ? "true" : null);
      }
      long appliedByB = b.node().progress().applied.sum();
      a.kill();
      // While the group has not noticed yet (a few reads, well within its session timeout), the dead
      // node's entities are still read from the copy.
      for (String user : ofA.subList(0, Math.min(10, ofA.size()))) {
        Reply stale = b.call(HttpMethod.GET, "/v1/users/" + user + "?stale=true", null, Map.of());
        assertThat(stale.status()).as("stale read of %s with its owner dead", user).isEqualTo(200);
        assertThat(stale.header("Kfold-Stale")).as("Kfold-Stale of %s with its owner dead", user).isEqualTo("true");
        assertThat(stale.body().path("version").asLong()).isEqualTo(5);
      }
      await("b folds all partitions", () -> node.node().progress().lag().size() == TestNodes.SHIPPED_PARTITIONS
          && node.node().progress().caughtUp());
      assertThat(b.node().progress().applied.sum()).as("events b folded after taking over").isEqualTo(appliedByB);
      for (int u = 0; u < USERS; u++) {
        Reply read = b.call(HttpMethod.GET, "/v1/users/u" + u + "?stale=true", null, Map.of());
        assertThat(read.body().path("version").asLong()).as("version of u%d", u).isEqualTo(5);
        assertThat(read.header("Kfold-Stale")).as("Kfold-Stale of u%d, now b's", u).isNull();
      }
    } finally {
      a.stopIfAlive();
      if (b != null) {
        b.close();
      }
    }
  }

  @Test
  @DisplayName("a restore several times longer than max.poll.interval.ms runs in slices between polls: it completes"
      + " in the one assignment the group gave, and /ready shows its progress")
  void longRestoreKeepsTheAssignment() throws Exception {
    Map<String, String> env = TestNodes.env(TestNodes.newApp("long-restore"), TestNodes.tempDir("long-restore-a"));
    env.put("KFOLD_FOLD_STANDBY_REPLICAS", "0");
    NodeConfig first = NodeConfig.load(env);
    Map<String, Long> versions = foldManyEvents(first);
    int items = TestLog.records(first.changelogTopic("users")).size();

    // The second node writes its store at 0.1 ms per item: the restore takes items / 10 ms.
    Duration maxPollInterval = Duration.ofSeconds(2);
    assertThat(Duration.ofMillis(items / 10)).as("restore time of %d changelog items", items)
        .isGreaterThan(maxPollInterval.multipliedBy(3));
    env.put("KFOLD_DATA_DIR", TestNodes.tempDir("long-restore-b").toString());
    Vertx vertx = Vertx.vertx();
    try {
      NodeRuntime b = NodeRuntime.start(vertx, NodeConfig.load(env),
          slowStore(100_000).withFoldMaxPollInterval(maxPollInterval)).await(60, TimeUnit.SECONDS);
      int restoringSeen = 0;
      long deadline = System.currentTimeMillis() + 90_000;
      while (!b.progress().caughtUp()) {
        assertThat(System.currentTimeMillis()).as("the second node restores and catches up").isLessThan(deadline);
        restoringSeen = Math.max(restoringSeen, b.progress().restoring().size());
        Thread.sleep(20);
      }
      assertThat(restoringSeen).as("partitions shown restoring").isPositive();
      assertThat(b.progress().applied.sum()).as("events folded again after the restore").isZero();
      versions.forEach((key, version) -> assertThat(b.store().get("users", key).version()).as("version of %s", key)
          .isEqualTo(version));
      // One more event, folded only after polls that follow the restore: a member that the group threw
      // out during the restore has joined again by then.
      try (KafkaProducer<byte[], byte[]> outside = TestNodes.plainProducer()) {
        outside.send(new ProducerRecord<>(first.eventsTopic("users"), bytes("u0"), bytes("{\"after\":true}"))).get();
      }
      deadline = System.currentTimeMillis() + 30_000;
      // The store, not the applied counter: the fold counts an event before its batch is written.
      while (b.store().get("users", "u0").version() < versions.get("u0") + 1) {
        assertThat(System.currentTimeMillis()).as("the event after the restore is folded").isLessThan(deadline);
        Thread.sleep(20);
      }
      assertThat(b.store().get("users", "u0").version()).isEqualTo(versions.get("u0") + 1);
      assertThat(b.progress().applied.sum()).as("events folded after the restore").isEqualTo(1);
      assertThat(b.progress().assignments.sum()).as("assignments the group gave the second node").isEqualTo(1);
      b.stop().await(60, TimeUnit.SECONDS);
    } finally {
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  @Test
  @DisplayName("a node that joins during a long restore takes partitions away from it: the restorer stops restoring"
      + " those and goes on with the ones it keeps from where it was; nothing is folded twice")
  void restoreStopsWhenItsPartitionMoves() throws Exception {
    Map<String, String> env = TestNodes.quickRebalances(TestNodes.env(TestNodes.newApp("moved-restore"), TestNodes.tempDir("moved-restore-a")));
    env.put("KFOLD_FOLD_STANDBY_REPLICAS", "0");
    NodeConfig first = NodeConfig.load(env);
    Map<String, Long> versions = foldManyEvents(first);
    env.put("KFOLD_DATA_DIR", TestNodes.tempDir("moved-restore-b").toString());
    Vertx vertx = Vertx.vertx();
    RunningNode c = null;
    try {
      // 0.2 ms per item: a restore of many seconds, that the third node's join lands in.
      NodeRuntime b = NodeRuntime.start(vertx, NodeConfig.load(env), slowStore(200_000)).await(60, TimeUnit.SECONDS);
      long deadline = System.currentTimeMillis() + 60_000;
      while (b.progress().restoring().values().stream().noneMatch(records -> records[0] > 0)) {
        assertThat(System.currentTimeMillis()).as("the second node starts restoring").isLessThan(deadline);
        Thread.sleep(20);
      }
      env.put("KFOLD_DATA_DIR", TestNodes.tempDir("moved-restore-c").toString());
      c = RunningNode.start(NodeConfig.load(env));
      // Until the two fold every partition between them, caught up: the third node restores the
      // partitions that moved from their changelogs, maybe after the second caught up on its own.
      deadline = System.currentTimeMillis() + 60_000;
      while (!(b.progress().caughtUp() && c.node().progress().caughtUp()
          && folded(b, c.node()).size() == TestNodes.SHIPPED_PARTITIONS)) {
        assertThat(System.currentTimeMillis()).as("the two nodes fold every partition, caught up; they fold %s",
            folded(b, c.node())).isLessThan(deadline);
        Thread.sleep(20);
      }
      assertThat(b.progress().assignments.sum()).as("assignments the group gave the second node").isGreaterThan(1);
      assertThat(b.progress().applied.sum() + c.node().progress().applied.sum()).as("events folded again").isZero();
      Ownership ownership = new Ownership(first, Map.of("users", 4), b.progress());
      for (Map.Entry<String, Long> user : versions.entrySet()) {
        NodeRuntime owner = ownership.owns("users", user.getKey()) ? b : c.node();
        assertThat(owner.store().get("users", user.getKey()).version()).as("version of %s", user.getKey())
            .isEqualTo(user.getValue());
      }
      b.stop().await(60, TimeUnit.SECONDS);
    } finally {
      if (c != null) {
        c.close();
      }
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  /** The partitions either node folds. */
  private static Set<TopicPartition> folded(NodeRuntime one, NodeRuntime other) {
    Set<TopicPartition> folded = new HashSet<>(one.progress().lag().keySet());
    folded.addAll(other.progress().lag().keySet());
    return folded;
  }

  /** Events of 2,000 users from an outside producer, folded by a node with {@code config}; answers each user's version. */
  private static Map<String, Long> foldManyEvents(NodeConfig config) throws Exception {
    Map<String, Long> versions = new HashMap<>();
    try (RunningNode a = RunningNode.start(config)) {
      try (KafkaProducer<byte[], byte[]> outside = TestNodes.plainProducer()) {
        for (int e = 0; e < LONG_RESTORE_EVENTS; e++) {
          String key = "u" + e % 2000;
          versions.merge(key, 1L, Long::sum);
          outside.send(new ProducerRecord<>(config.eventsTopic("users"), bytes(key), bytes("{\"n\":" + e + "}")));
        }
      }
      long deadline = System.currentTimeMillis() + 60_000;
      while (a.node().progress().applied.sum() < LONG_RESTORE_EVENTS) {
        assertThat(System.currentTimeMillis()).as("the first node folds every event").isLessThan(deadline);
        Thread.sleep(50);
      }
      TestNodes.awaitCaughtUp(a.node());
    }
    return versions;
  }

  /** A node whose store takes {@code nanosPerItem} for each item it writes. */
  private static NodeRuntime.Options slowStore(long nanosPerItem) {
    return NodeRuntime.Options.DEFAULTS.withStore(store -> new InterceptedStore(store,
        batch -> LockSupport.parkNanos(batch.size() * nanosPerItem)));
  }

  /**
   * Four appends per user through the node at {@code port} (one with an idempotency key) and one
   * outside event without a version.
   */
  private static Reply writeUsers(WebClient client, int port, NodeConfig config, String prefix) throws Exception {
    Reply idempotent = null;
    for (int round = 0; round < 4; round++) {
      for (int u = 0; u < USERS; u++) {
        Map<String, String> headers = round == 2 && u == 0 ? Map.of("Idempotency-Key", prefix + "-key") : Map.of();
        Reply reply = TestNodes.call(client, HttpMethod.POST, port, "/v1/users/u" + u + "/events",
            "{\"events\":[{\"type\":\"Renamed\",\"payload\":{\"n\":" + round + ",\"r" + round + "\":\"" + u + "\"}}]}", headers);
        assertThat(reply.status()).isEqualTo(200);
        if (!headers.isEmpty()) {
          idempotent = reply;
        }
      }
    }
    try (KafkaProducer<byte[], byte[]> outside = TestNodes.plainProducer()) {
      for (int u = 0; u < USERS; u++) {
        outside.send(new ProducerRecord<>(config.eventsTopic("users"), bytes("u" + u), bytes("{\"outside\":" + u + "}")));
      }
    }
    return idempotent;
  }

  /**
   * Orders placed and paid (the payment with an idempotency key) through the node at {@code port},
   * and the shipment each paid order asks for (the shipment-request worker's command): entities of
   * every type, and idempotency keys of each kind of write.
   */
  private static void writeOrders(WebClient client, int port) throws Exception {
    for (int o = 0; o < ORDERS; o++) {
      String commands = "/v1/orders/o" + o + "/commands";
      assertThat(TestNodes.call(client, HttpMethod.POST, port, commands, PLACE, Map.of()).status()).isEqualTo(200);
      assertThat(TestNodes.call(client, HttpMethod.POST, port, commands, PAY, Map.of("Idempotency-Key", "pay-o" + o))
          .status()).isEqualTo(200);
    }
    for (int o = 0; o < ORDERS; o++) {
      assertThat(call(client, port, "/v1/shipments/o" + o + "?minVersion=1&timeoutMs=30000").status())
          .as("shipment of o%d", o).isEqualTo(200);
    }
  }

  private static Reply call(WebClient client, int port, String path) throws Exception {
    return TestNodes.call(client, HttpMethod.GET, port, path, null, Map.of());
  }

  /** A kfold process of {@code app} with its store in {@code dataDir}, that the group counts dead 6 s after a kill. */
  private static KfoldProcess process(String app, Path dataDir, String name) throws Exception {
    Map<String, String> env = TestNodes.env(app, dataDir);
    env.put("KFOLD_KAFKA_SESSION_TIMEOUT_MS", "6000");
    return new KfoldProcess(env, Path.of("target", name + "-" + app + ".log"));
  }

  /** A stale read through {@code node}, repeated until its copy has reached {@code version}. */
  private static Reply awaitStaleRead(RunningNode node, String path, long version) throws Exception {
    long deadline = System.currentTimeMillis() + 10_000;
    Reply stale = node.call(HttpMethod.GET, path + "?stale=true", null, Map.of());
    while (stale.body().path("version").asLong() < version && System.currentTimeMillis() < deadline) {
      Thread.sleep(50);
      stale = node.call(HttpMethod.GET, path + "?stale=true", null, Map.of());
    }
    return stale;
  }

  /**
   * Waits until, for every type, the committed changelog holds in each partition a marker at the
   * end of the events partition: everything the node folded has been sent to the changelog.
   */
  private static void awaitChangelogComplete(NodeConfig config) throws Exception {
    await("the changelog holds everything the node folded", () -> {
      for (String type : TYPES) {
        Map<Integer, Long> folded = new HashMap<>();
        TestLog.records(config.eventsTopic(type)).forEach(r -> folded.merge(r.partition(), r.offset() + 1, Math::max));
        Map<Integer, Long> marked = new HashMap<>();
        TestLog.committedRecords(config.changelogTopic(type)).forEach(r -> {
          long offset = new ChangelogItem(r.key(), r.value()).markedOffset();
          if (offset >= 0) {
            marked.merge(r.partition(), offset, Math::max);
          }
        });
        if (!marked.equals(folded)) {
          return false;
        }
      }
      return true;
    });
  }

  /**
   * Every item the changelog carries is in the restored store, byte for byte, and nothing more: all
   * column families but the outbox, which holds what a node has yet to publish, its own work, that
   * the next owner does again from the log.
   */
  private static void assertSameStore(SortedMap<String, SortedMap<String, String>> original,
                                      SortedMap<String, SortedMap<String, String>> restored) {
    assertThat(restored.keySet()).as("column families").isEqualTo(original.keySet());
    for (String column : List.of("states", "events", "idempotency")) {
      // The shipped views' rows and builds are in the states too (internal types start with "_");
      // the user types must all be there.
      assertThat(StoreContents.entityTypes(original.get(column)).stream().filter(type -> !type.startsWith("_")))
          .as("types in the dead node's %s", column).containsExactlyElementsOf(TYPES);
    }
    assertThat(original.get("offsets")).as("the dead node's offsets").isNotEmpty();
    for (String column : original.keySet()) {
      if (column.equals("outbox")) {
        continue;
      }
      SortedMap<String, String> was = original.get(column);
      SortedMap<String, String> is = restored.get(column);
      List<String> differences = new ArrayList<>();
      was.forEach((key, value) -> {
        if (!is.containsKey(key)) {
          differences.add("missing " + key);
        } else if (!is.get(key).equals(value)) {
          differences.add(key + ": " + value + " restored as " + is.get(key));
        }
      });
      is.keySet().stream().filter(key -> !was.containsKey(key)).forEach(key -> differences.add("more " + key));
      assertThat(differences.size()).as("items of %s that differ, of %d; the first: %s", column, was.size(),
          differences.stream().limit(3).toList()).isZero();
    }
  }

  private interface Condition {
    boolean holds() throws Exception;
  }

  private static void await(String what, Condition condition) throws Exception {
    long deadline = System.currentTimeMillis() + 90_000;
    while (!condition.holds()) {
      if (System.currentTimeMillis() > deadline) {
        throw new AssertionError("not within 90 s: " + what);
      }
      Thread.sleep(100);
    }
  }

  private static byte[] bytes(String text) {
    return text.getBytes(StandardCharsets.UTF_8);
  }
}
