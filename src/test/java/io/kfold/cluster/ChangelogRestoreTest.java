package io.kfold.cluster;

import io.kfold.InterceptedStore;
import io.kfold.KfoldConfig;
import io.kfold.KfoldNode;
import io.kfold.RunningNode;
import io.kfold.TestBroker;
import io.kfold.TestLog;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A node that gets partitions it has no state of restores them from the changelog topic instead of
 * folding the whole events log; a standby keeps a warm copy and takes over without restoring.
 */
@ExtendWith(TestBroker.class)
class ChangelogRestoreTest {

  private static final int USERS = 100;
  private static final int LONG_RESTORE_EVENTS = 64_000;

  @Test
  @DisplayName("a node without local state restores from the changelog, folds nothing twice, and answers as the first node did")
  void restoresFromTheChangelog() throws Exception {
    String app = TestNodes.newApp("restore");
    KfoldConfig first = TestNodes.config(app, TestNodes.tempDir("restore-a"));
    Map<String, String> states = new HashMap<>();
    Map<String, String> histories = new HashMap<>();
    Reply idempotent;
    try (RunningNode a = RunningNode.start(first)) {
      idempotent = writeUsers(a, "restore");
      TestNodes.awaitCaughtUp(a.node());
      for (int u = 0; u < USERS; u++) {
        states.put("u" + u, a.get("/v1/users/u" + u + "?minVersion=5&timeoutMs=10000").body().toString());
        histories.put("u" + u, a.get("/v1/users/u" + u + "/events?limit=1000").body().toString());
      }
    }
    int eventsInLog = TestLog.records(first.eventsTopic("users")).size();

    KfoldConfig second = TestNodes.config(app, TestNodes.tempDir("restore-b"));
    try (RunningNode b = RunningNode.start(second)) {
      assertThat(b.node().progress().applied.sum()).as("events folded again after the restore").isZero();
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
  @DisplayName("a standby keeps a warm copy from the changelog, answers stale reads from it, and takes over without folding the log again")
  void standbyTakesOver() throws Exception {
    String app = TestNodes.newApp("standby");
    KfoldConfig first = TestNodes.config(app, TestNodes.tempDir("standby-a"));
    KfoldConfig second = TestNodes.config(app, TestNodes.tempDir("standby-b"));
    RunningNode a = RunningNode.start(first);
    RunningNode b = null;
    try {
      writeUsers(a, "standby");
      b = RunningNode.start(second);
      long deadline = System.currentTimeMillis() + 60_000;
      // Each node folds some partitions and keeps a warm copy of the other's.
      while (a.node().progress().standbys().isEmpty() || b.node().progress().standbys().isEmpty()
          || a.node().progress().lag().isEmpty() || b.node().progress().lag().isEmpty()) {
        assertThat(System.currentTimeMillis()).as("both nodes fold and keep standbys").isLessThan(deadline);
        Thread.sleep(100);
      }
      TestNodes.awaitCaughtUp(a.node());
      TestNodes.awaitCaughtUp(b.node());
      for (int u = 0; u < USERS; u++) {
        String path = "/v1/users/u" + u;
        Reply owner = a.get(path);
        // A stale read is answered by the node asked, from its own copy, and says so.
        Reply stale = b.call(HttpMethod.GET, path + "?stale=true", null, Map.of());
        deadline = System.currentTimeMillis() + 10_000;
        while (stale.body().path("version").asLong() < owner.body().path("version").asLong()
            && System.currentTimeMillis() < deadline) {
          Thread.sleep(50);
          stale = b.call(HttpMethod.GET, path + "?stale=true", null, Map.of());
        }
        assertThat(stale.body()).as("stale read of u%d", u).isEqualTo(owner.body());
      }
      long appliedByB = b.node().progress().applied.sum();
      a.close();
      a = null;
      deadline = System.currentTimeMillis() + 60_000;
      while (b.node().progress().lag().size() < 12 || !b.node().progress().caughtUp()) {
        assertThat(System.currentTimeMillis()).as("b folds all partitions").isLessThan(deadline);
        Thread.sleep(100);
      }
      assertThat(b.node().progress().applied.sum()).as("events b folded after taking over").isEqualTo(appliedByB);
      for (int u = 0; u < USERS; u++) {
        Reply read = b.get("/v1/users/u" + u);
        assertThat(read.body().path("version").asLong()).as("version of u%d", u).isEqualTo(5);
      }
    } finally {
      if (a != null) {
        a.close();
      }
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
    KfoldConfig first = KfoldConfig.load(env);
    Map<String, Long> versions = foldManyEvents(first);
    int items = TestLog.records(first.changelogTopic("users")).size();

    // The second node writes its store at 0.1 ms per item: the restore takes items / 10 ms.
    Duration maxPollInterval = Duration.ofSeconds(2);
    assertThat(Duration.ofMillis(items / 10)).as("restore time of %d changelog items", items)
        .isGreaterThan(maxPollInterval.multipliedBy(3));
    env.put("KFOLD_DATA_DIR", TestNodes.tempDir("long-restore-b").toString());
    Vertx vertx = Vertx.vertx();
    try {
      KfoldNode b = KfoldNode.start(vertx, KfoldConfig.load(env),
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
    Map<String, String> env = TestNodes.env(TestNodes.newApp("moved-restore"), TestNodes.tempDir("moved-restore-a"));
    env.put("KFOLD_FOLD_STANDBY_REPLICAS", "0");
    KfoldConfig first = KfoldConfig.load(env);
    Map<String, Long> versions = foldManyEvents(first);
    env.put("KFOLD_DATA_DIR", TestNodes.tempDir("moved-restore-b").toString());
    Vertx vertx = Vertx.vertx();
    RunningNode c = null;
    try {
      // 0.2 ms per item: a restore of many seconds, that the third node's join lands in.
      KfoldNode b = KfoldNode.start(vertx, KfoldConfig.load(env), slowStore(200_000)).await(60, TimeUnit.SECONDS);
      long deadline = System.currentTimeMillis() + 60_000;
      while (b.progress().restoring().values().stream().noneMatch(records -> records[0] > 0)) {
        assertThat(System.currentTimeMillis()).as("the second node starts restoring").isLessThan(deadline);
        Thread.sleep(20);
      }
      env.put("KFOLD_DATA_DIR", TestNodes.tempDir("moved-restore-c").toString());
      c = RunningNode.start(KfoldConfig.load(env));
      TestNodes.awaitCaughtUp(b);
      assertThat(b.progress().assignments.sum()).as("assignments the group gave the second node").isGreaterThan(1);
      assertThat(b.progress().applied.sum() + c.node().progress().applied.sum()).as("events folded again").isZero();
      Ownership ownership = new Ownership(first, Map.of("users", 4), b.progress());
      for (Map.Entry<String, Long> user : versions.entrySet()) {
        KfoldNode owner = ownership.owns("users", user.getKey()) ? b : c.node();
        assertThat(owner.store().get("users", user.getKey()).version()).as("version of %s", user.getKey())
            .isEqualTo(user.getValue());
      }
      Set<TopicPartition> folded = new HashSet<>(b.progress().lag().keySet());
      folded.addAll(c.node().progress().lag().keySet());
      assertThat(folded).as("partitions the two nodes fold").hasSize(12);
      b.stop().await(60, TimeUnit.SECONDS);
    } finally {
      if (c != null) {
        c.close();
      }
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  /** Events of 2,000 users from an outside producer, folded by a node with {@code config}; answers each user's version. */
  private static Map<String, Long> foldManyEvents(KfoldConfig config) throws Exception {
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
  private static KfoldNode.Options slowStore(long nanosPerItem) {
    return KfoldNode.Options.DEFAULTS.withStore(store -> new InterceptedStore(store,
        batch -> LockSupport.parkNanos(batch.size() * nanosPerItem)));
  }

  /** Four appends per user through HTTP (one with an idempotency key) and one outside event without a version. */
  private static Reply writeUsers(RunningNode node, String prefix) throws Exception {
    Reply idempotent = null;
    for (int round = 0; round < 4; round++) {
      for (int u = 0; u < USERS; u++) {
        Map<String, String> headers = round == 2 && u == 0 ? Map.of("Idempotency-Key", prefix + "-key") : Map.of();
        Reply reply = node.call(HttpMethod.POST, "/v1/users/u" + u + "/events",
            "{\"events\":[{\"type\":\"Renamed\",\"payload\":{\"n\":" + round + ",\"r" + round + "\":\"" + u + "\"}}]}", headers);
        assertThat(reply.status()).isEqualTo(200);
        if (!headers.isEmpty()) {
          idempotent = reply;
        }
      }
    }
    try (KafkaProducer<byte[], byte[]> outside = TestNodes.plainProducer()) {
      for (int u = 0; u < USERS; u++) {
        outside.send(new ProducerRecord<>(node.config.eventsTopic("users"), bytes("u" + u), bytes("{\"outside\":" + u + "}")));
      }
    }
    return idempotent;
  }

  private static byte[] bytes(String text) {
    return text.getBytes(StandardCharsets.UTF_8);
  }
}
