package io.kfold.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.config.NodeConfig;
import io.kfold.KfoldProcess;
import io.kfold.TestBroker;
import io.kfold.TestLog;
import io.kfold.TestNodes;
import io.kfold.types.Envelopes;
import io.kfold.store.ChangelogItem;
import io.kfold.store.RocksEntityStore;
import io.kfold.store.StoreBatch;
import io.kfold.store.StoredEntity;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.utils.Utils;
import org.assertj.core.api.SoftAssertions;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.IntStream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A node that stalls (a GC pause, a suspended VM) long enough to be taken for dead, and then goes on
 * where it stopped — a zombie — must not write into the changes or the changelog after the node that took
 * its partitions over: a change of an entity after a newer change of it breaks the order consumers
 * rely on, and a stale changelog item after a newer one is what a later restore reads.
 *
 * <p>Two nodes share the partitions; writers go through one of them. The other, busy folding a
 * burst of events of its own partitions, is frozen with SIGSTOP, so that it stops with a poll's
 * worth of events fetched, changes in flight and changelog items not yet sent. The session timeout
 * is kfold's default, 45 s: the first node sees the frozen one's heartbeats in the node directory
 * stop, removes it from the group and fences its transactional id within seconds, takes its
 * partitions over and folds newer writes of the same entities; then the frozen node is thawed with SIGCONT while the writers go on with other entities
 * (a newer write of an entity would cover a stale item of it). Then, as read_committed consumers see
 * the topics:
 * <ul>
 *   <li>in every changes partition an entity's versions only go up (a change repeated as it was is
 *       allowed: consumers de-duplicate by its id), and every version of every entity is there;</li>
 *   <li>in every changelog partition, at every marker (the events offset a restore that stops there
 *       folds on from), each entity's latest state item holds every event of it below that offset;</li>
 *   <li>at the end, the changelog's latest states are the owners' states, and a fresh node restored
 *       from it answers every entity and history as its owner did, byte for byte.</li>
 * </ul>
 */
@ExtendWith(TestBroker.class)
class ZombieFencingTest {

  private static final Logger LOG = LoggerFactory.getLogger(ZombieFencingTest.class);
  /** kfold's default: the frozen node is taken for dead long before its session times out. */
  private static final int SESSION_TIMEOUT_MS = 45_000;
  private static final String TYPE = "users";
  /** Entities written before and while the node is frozen. */
  private static final List<String> HOT = IntStream.range(0, 200).mapToObj(i -> "h" + i).toList();
  /** Entities written after the thaw: a newer write of a hot entity would hide a stale item of it in the changelog. */
  private static final List<String> LATE = IntStream.range(0, 100).mapToObj(i -> "l" + i).toList();
  private static final int WRITERS = 6;
  /** Outside events for the node to be frozen, so that it is folding and publishing when it is frozen. */
  private static final int BURST = 20_000;
  /** Header of a change record: the offset of its event in the events partition. */
  private static final String SOURCE_OFFSET = "kfold.source.offset";
  private static final Pattern APPLIED = Pattern.compile("(?m)^kfold_fold_events_applied_total\\s+([0-9.eE+]+)");

  private final ClusterClient cluster = new ClusterClient();

  @Test
  @DisplayName("a node frozen, taken for dead and thawed after its successor took over puts nothing in the changes"
      + " or the changelog after its successor's, and a restore from the changelog equals the owners' stores")
  void frozenNodeWritesNothingAfterItsSuccessor() throws Exception {
    String app = TestNodes.newApp("zombie");
    NodeConfig config = TestNodes.config(app, TestNodes.tempDir("zombie-names"));
    // -Dzombie.transactions=false runs the same scenario without fencing, to see it fail.
    List<KfoldProcess> nodes = ClusterClient.processes(app, "zombie", 2, SESSION_TIMEOUT_MS,
        Map.of("KFOLD_FOLD_TRANSACTIONS", System.getProperty("zombie.transactions", "true")));
    KfoldProcess entry = nodes.get(0);
    KfoldProcess zombie = nodes.get(1);
    List<KfoldProcess> all = new ArrayList<>(nodes);
    Writers writers = new Writers(entry.port(), config.kafka().partitions());
    long started = System.currentTimeMillis();
    ExecutorService starter = Executors.newFixedThreadPool(nodes.size());
    try {
      ClusterClient.startAll(nodes, starter);
      Set<Integer> zombiePartitions = foldedPartitions(zombie, config.eventsTopic(TYPE));
      assertThat(zombiePartitions).as("the %s partitions the second node folds", TYPE).isNotEmpty();
      writers.zombiePartitions = zombiePartitions;
      List<String> zombieEntities = HOT.stream().filter(key -> zombiePartitions.contains(writers.partition(key))).toList();
      LOG.info("the node to freeze folds {} partitions {}: {} of the {} hot entities", TYPE, zombiePartitions,
          zombieEntities.size(), HOT.size());

      writers.start(HOT);
      awaitCondition("writes acknowledged before the freeze", Duration.ofSeconds(30), () -> writers.acknowledged.get() >= 100);

      // The freeze: while the node folds a burst of events of its own entities, so that it has
      // changes in flight and changelog items not yet sent.
      long appliedBefore = applied(zombie);
      try (KafkaProducer<byte[], byte[]> outside = TestNodes.plainProducer()) {
        for (int i = 0; i < BURST; i++) {
          String key = zombieEntities.get(i % zombieEntities.size());
          outside.send(new ProducerRecord<>(config.eventsTopic(TYPE), bytes(key),
              bytes("{\"burst\":" + i + ",\"b" + i % 8 + "\":\"" + "x".repeat(40) + "\"}")));
        }
      }
      AtomicLong appliedSoFar = new AtomicLong();
      awaitCondition("the node to freeze folding the burst", Duration.ofSeconds(30),
          () -> {
            appliedSoFar.set(applied(zombie));
            return appliedSoFar.get() >= appliedBefore + BURST / 10;
          });
      zombie.freeze();
      long frozenAt = System.currentTimeMillis();
      LOG.info("froze node 1 when it had applied {} events since the burst of {} began", appliedSoFar.get() - appliedBefore,
          BURST);

      // The takeover: the entry node folds every partition and has caught up.
      // Before the session times out: the entry node removed the frozen one from the group.
      awaitCondition("the entry node folding all " + ClusterClient.ALL_PARTITIONS + " partitions, caught up",
          Duration.ofMillis(SESSION_TIMEOUT_MS / 2), () -> foldsAllCaughtUp(entry));
      long tookOverAt = System.currentTimeMillis();
      long zombieWritesAtTakeover = writers.acknowledgedOnZombiePartitions.get();
      LOG.info("the entry node took over {} ms after the freeze", tookOverAt - frozenAt);
      // Newer versions, by the new owner, of the entities the frozen node left unsent. Few, so that the
      // node is thawed before its open transaction times out (10 s): then only the removal's fencing
      // and the group's generation check keep what it sends from being read, not the timeout.
      awaitCondition("writes of the frozen node's entities through its successor", Duration.ofSeconds(30),
          () -> writers.acknowledgedOnZombiePartitions.get() >= zombieWritesAtTakeover + 60);

      writers.retarget(LATE);
      long thawedAt = System.currentTimeMillis();
      zombie.thaw();
      LOG.info("thawed node 1 after {} ms frozen", thawedAt - frozenAt);
      // It learns that it was replaced, and rejoins the group.
      ClusterClient.awaitSpread(nodes, Duration.ofSeconds(60));
      long lateBefore = writers.acknowledged.get();
      awaitCondition("writes after the thaw", Duration.ofSeconds(30), () -> writers.acknowledged.get() >= lateBefore + 300);
      writers.stop();
      for (KfoldProcess node : nodes) {
        node.awaitStatus("/ready", 200);
      }
      LOG.info("writes: {} acknowledged, {} given up; retried {}", writers.acknowledged.get(), writers.abandoned.get(),
          cluster.retried());

      // What each entity is, as its owner answers.
      Map<String, KfoldProcess.Answer> states = new LinkedHashMap<>();
      Map<String, KfoldProcess.Answer> histories = new LinkedHashMap<>();
      for (String key : entities()) {
        states.put(key, entry.fetch("/v1/" + TYPE + "/" + key));
        histories.put(key, entry.fetch("/v1/" + TYPE + "/" + key + "/events?limit=1000"));
      }

      SoftAssertions softly = new SoftAssertions();
      ChangesFindings changes = readChanges(config.changesTopic(TYPE), frozenAt, thawedAt, states);
      softly.assertThat(changes.outOfOrder().size()).as("changes of an entity after a newer change of it, or another"
          + " change under the same id, in %s; first %s", config.changesTopic(TYPE), first(changes.outOfOrder())).isZero();
      softly.assertThat(changes.missing().size()).as("entities whose changes in %s lack a version, or end with another"
          + " state than their owner's; first %s", config.changesTopic(TYPE), first(changes.missing())).isZero();
      ChangelogFindings changelog = readChangelog(config.changelogTopic(TYPE), changes.versionsByOffset(), states,
          frozenAt, thawedAt);
      softly.assertThat(changelog.staleAtMarkers().size()).as("entity states in %s older than a marker after them says;"
          + " first %s", config.changelogTopic(TYPE), first(changelog.staleAtMarkers())).isZero();
      softly.assertThat(changelog.notTheOwners().size()).as("entities whose latest state in %s, restored into an empty"
          + " store, is not their owner's; first %s", config.changelogTopic(TYPE), first(changelog.notTheOwners())).isZero();

      // A fresh node, alone, restores every partition from the changelog.
      for (KfoldProcess node : nodes) {
        node.requestStop();
      }
      for (KfoldProcess node : nodes) {
        node.awaitExit();
      }
      KfoldProcess fresh = ClusterClient.processes(app, "zombie-fresh", 1, SESSION_TIMEOUT_MS,
          Map.of("KFOLD_FOLD_STANDBY_REPLICAS", "0")).get(0);
      all.add(fresh);
      fresh.start();
      awaitCondition("the fresh node folding all " + ClusterClient.ALL_PARTITIONS + " partitions, caught up",
          Duration.ofSeconds(60), () -> foldsAllCaughtUp(fresh));
      List<String> restoreMismatches = new ArrayList<>();
      for (String key : entities()) {
        KfoldProcess.Answer state = fresh.fetch("/v1/" + TYPE + "/" + key);
        if (!state.equals(states.get(key))) {
          restoreMismatches.add(key + ": restored " + state + ", owner had " + states.get(key));
        }
        KfoldProcess.Answer history = fresh.fetch("/v1/" + TYPE + "/" + key + "/events?limit=1000");
        if (!history.equals(histories.get(key))) {
          restoreMismatches.add(key + ": restored history differs from the owner's");
        }
      }
      softly.assertThat(restoreMismatches.size()).as("entities a node restored from the changelog answers otherwise than"
          + " their owner did; first %s", first(restoreMismatches)).isZero();
      LOG.info("zombie fencing: {} changes out of order, {} entities with changes missing, {} stale changelog states"
          + " under a newer marker, {} changelog states not the owner's at the end, {} restored answers not the owner's;"
          + " {} s in all", changes.outOfOrder().size(), changes.missing().size(), changelog.staleAtMarkers().size(),
          changelog.notTheOwners().size(), restoreMismatches.size(), (System.currentTimeMillis() - started) / 1000);
      softly.assertAll();
    } finally {
      starter.shutdownNow();
      writers.stop();
      for (KfoldProcess node : all) {
        try {
          node.stopIfAlive();  // thaws it first if it is still frozen
        } catch (Exception | AssertionError e) {
          LOG.warn("stopping the node on port {} failed ({}); killing it", node.port(), e.toString());
          node.kill();
        }
      }
    }
  }

  private static List<String> first(List<String> findings) {
    return findings.subList(0, Math.min(5, findings.size()));
  }

  private static List<String> entities() {
    List<String> entities = new ArrayList<>(HOT);
    entities.addAll(LATE);
    return entities;
  }

  /**
   * What the changes topic holds that it should not, and what it lacks; and, per partition and
   * entity, the version each of its events gave it, by the event's offset: the fold's own account.
   */
  private record ChangesFindings(List<String> outOfOrder, List<String> missing,
                                 Map<Integer, Map<String, TreeMap<Long, Long>>> versionsByOffset) {}

  /**
   * Reads the changes topic as a read_committed consumer does. Finds, per partition, each change
   * whose version is below an earlier change of the same entity, or that repeats its entity's
   * latest version with other content; and each entity whose changes do not hold every version up
   * to its owner's, its latest one with the owner's state. Logs how many stale changes were created
   * (by the producer's clock) before the freeze, or after the thaw: only the frozen node sent those.
   */
  private static ChangesFindings readChanges(String topic, long frozenAt, long thawedAt,
                                             Map<String, KfoldProcess.Answer> states) throws IOException {
    Map<String, Long> latestVersion = new HashMap<>();
    Map<String, byte[]> latestValue = new HashMap<>();
    Map<String, Long> latestOffset = new HashMap<>();
    Map<String, Set<Long>> versions = new HashMap<>();
    Map<Integer, Map<String, TreeMap<Long, Long>>> versionsByOffset = new HashMap<>();
    List<String> outOfOrder = new ArrayList<>();
    long duplicates = 0;
    long createdBeforeFreeze = 0;
    long createdAfterThaw = 0;
    List<ConsumerRecord<byte[], byte[]>> records = TestLog.committedRecords(topic);
    for (ConsumerRecord<byte[], byte[]> record : records) {
      String id = Envelopes.parse(record.value()).path("id").asText();
      String key = id.substring(0, id.lastIndexOf(':'));
      long version = Long.parseLong(id.substring(id.lastIndexOf(':') + 1));
      versions.computeIfAbsent(key, k -> new TreeSet<>()).add(version);
      long sourceOffset = Long.parseLong(new String(record.headers().lastHeader(SOURCE_OFFSET).value(), StandardCharsets.UTF_8));
      versionsByOffset.computeIfAbsent(record.partition(), p -> new HashMap<>())
          .computeIfAbsent(key, k -> new TreeMap<>()).putIfAbsent(sourceOffset, version);
      String entity = record.partition() + "/" + key;
      Long latest = latestVersion.get(entity);
      if (latest != null && version <= latest) {
        boolean same = version == latest && Arrays.equals(record.value(), latestValue.get(entity));
        if (same) {
          duplicates++;
        } else {
          outOfOrder.add(topic + "-" + record.partition() + "@" + record.offset() + " " + id + " after version " + latest
              + " at offset " + latestOffset.get(entity));
          createdBeforeFreeze += record.timestamp() < frozenAt ? 1 : 0;
          createdAfterThaw += record.timestamp() >= thawedAt ? 1 : 0;
        }
        continue;
      }
      latestVersion.put(entity, version);
      latestValue.put(entity, record.value());
      latestOffset.put(entity, record.offset());
    }
    Map<String, byte[]> latestByKey = new HashMap<>();
    latestValue.forEach((entity, value) -> latestByKey.put(entity.substring(entity.indexOf('/') + 1), value));
    List<String> missing = new ArrayList<>();
    for (Map.Entry<String, KfoldProcess.Answer> owner : states.entrySet()) {
      String key = owner.getKey();
      JsonNode ownerBody = owner.getValue().status() == 404 ? null : Envelopes.parse(bytes(owner.getValue().body()));
      long version = ownerBody == null ? 0 : ownerBody.path("version").asLong();
      Set<Long> published = versions.getOrDefault(key, Set.of());
      if (published.size() != version || !published.stream().allMatch(v -> v >= 1 && v <= version)) {
        missing.add(key + ": changes of " + published.size() + " versions, owner has version " + version);
      } else if (version > 0 && !Envelopes.parse(latestByKey.get(key)).path("state").equals(ownerBody.path("state"))) {
        missing.add(key + ": its latest change does not carry its owner's state");
      }
    }
    LOG.info("{}: {} changes, {} repeated as they were; {} stale ({} created before the freeze, {} after the thaw){}",
        topic, records.size(), duplicates, outOfOrder.size(), createdBeforeFreeze, createdAfterThaw,
        outOfOrder.isEmpty() ? "" : ", first " + first(outOfOrder));
    return new ChangesFindings(outOfOrder, missing, versionsByOffset);
  }

  /** What a restore from the changelog gets wrong: at some marker on the way, and at its end. */
  private record ChangelogFindings(List<String> staleAtMarkers, List<String> notTheOwners) {}

  /**
   * Reads the changelog as a read_committed consumer does, and writes its state items in their
   * order into an empty store, as a restore does. Every marker is a point where a restore may stop
   * and fold on from the offset it names, so at every marker each entity of the partition must be at
   * least at the version its events below that offset give it (the changes say which): a stale
   * state item that a newer marker follows is an entity a restore loses writes of. At the end, each
   * entity's state must be its owner's; this is tried again for a few seconds, as the items of the
   * last writes may still be on their way.
   */
  private static ChangelogFindings readChangelog(String topic, Map<Integer, Map<String, TreeMap<Long, Long>>> versionsByOffset,
                                                 Map<String, KfoldProcess.Answer> states, long frozenAt, long thawedAt)
      throws Exception {
    Map<ByteBuffer, String> entityOfStateItem = new HashMap<>();
    for (String key : entities()) {
      entityOfStateItem.put(ByteBuffer.wrap(ChangelogItem.state(TYPE, key, new StoredEntity(0, 0, null, new byte[0])).key()), key);
    }
    long deadline = System.currentTimeMillis() + 5_000;
    while (true) {
      List<ConsumerRecord<byte[], byte[]>> records = TestLog.committedRecords(topic);
      List<String> staleAtMarkers = new ArrayList<>();
      List<String> notTheOwners = new ArrayList<>();
      long createdBeforeFreeze = 0;
      long createdAfterThaw = 0;
      try (Restored restored = new Restored()) {
        Map<Integer, List<ConsumerRecord<byte[], byte[]>>> byPartition = new TreeMap<>();
        records.forEach(record -> byPartition.computeIfAbsent(record.partition(), p -> new ArrayList<>()).add(record));
        for (Map.Entry<Integer, List<ConsumerRecord<byte[], byte[]>>> partition : byPartition.entrySet()) {
          Map<String, TreeMap<Long, Long>> truth = versionsByOffset.getOrDefault(partition.getKey(), Map.of());
          Map<String, Long> restoredVersion = new HashMap<>();
          Map<String, ConsumerRecord<byte[], byte[]>> latestItem = new HashMap<>();
          Map<String, ConsumerRecord<byte[], byte[]>> pending = new LinkedHashMap<>();
          Set<String> reported = new HashSet<>();
          for (ConsumerRecord<byte[], byte[]> record : partition.getValue()) {
            if (record.key() == null || record.value() == null) {
              continue;
            }
            String entity = entityOfStateItem.get(ByteBuffer.wrap(record.key()));
            if (entity != null) {
              pending.put(entity, record);
              continue;
            }
            long marked = new ChangelogItem(record.key(), record.value()).markedOffset();
            if (marked < 0) {
              continue;  // an event or an idempotency key
            }
            restored.write(pending, restoredVersion, latestItem);
            for (Map.Entry<String, TreeMap<Long, Long>> events : truth.entrySet()) {
              Map.Entry<Long, Long> below = events.getValue().floorEntry(marked - 1);
              long expected = below == null ? 0 : below.getValue();
              long version = restoredVersion.getOrDefault(events.getKey(), 0L);
              ConsumerRecord<byte[], byte[]> item = latestItem.get(events.getKey());
              if (version < expected && reported.add(events.getKey() + "@" + (item == null ? -1 : item.offset()))) {
                staleAtMarkers.add(topic + "-" + partition.getKey() + ": " + events.getKey() + " at version " + version
                    + (item == null ? "" : " (its item at offset " + item.offset() + ")") + " when the marker at offset "
                    + record.offset() + " says the items are complete up to events offset " + marked + ", where it is at"
                    + " version " + expected);
                if (item != null) {
                  createdBeforeFreeze += item.timestamp() < frozenAt ? 1 : 0;
                  createdAfterThaw += item.timestamp() >= thawedAt ? 1 : 0;
                }
              }
            }
          }
          restored.write(pending, restoredVersion, latestItem);
        }
        for (Map.Entry<String, KfoldProcess.Answer> owner : states.entrySet()) {
          StoredEntity entity = restored.store.get(TYPE, owner.getKey());
          if (owner.getValue().status() == 404) {
            if (entity != null) {
              notTheOwners.add(owner.getKey() + ": version " + entity.version() + " in the changelog, owner has none");
            }
            continue;
          }
          assertThat(owner.getValue().status()).as("owner's answer for %s", owner.getKey()).isEqualTo(200);
          JsonNode expected = Envelopes.parse(bytes(owner.getValue().body()));
          if (entity == null) {
            notTheOwners.add(owner.getKey() + ": not in the changelog, owner has version " + expected.path("version"));
          } else if (entity.version() != expected.path("version").asLong()
              || !Envelopes.parse(entity.state()).equals(expected.path("state"))) {
            notTheOwners.add(owner.getKey() + ": version " + entity.version() + " in the changelog, owner has "
                + expected.path("version"));
          }
        }
      }
      if (notTheOwners.isEmpty() || System.currentTimeMillis() > deadline) {
        LOG.info("{}: {} items; {} stale entity states followed by a newer marker ({} created before the freeze, {} after"
            + " the thaw){}; {} entities restored otherwise than their owner has them{}", topic, records.size(),
            staleAtMarkers.size(), createdBeforeFreeze, createdAfterThaw,
            staleAtMarkers.isEmpty() ? "" : ", first " + first(staleAtMarkers), notTheOwners.size(),
            notTheOwners.isEmpty() ? "" : ", first " + first(notTheOwners));
        return new ChangelogFindings(staleAtMarkers, notTheOwners);
      }
      Thread.sleep(1000);
    }
  }

  /** An empty store in a temporary folder that changelog items are written into, as a node's restore writes them. */
  private static final class Restored implements AutoCloseable {
    final RocksEntityStore store = new RocksEntityStore(TestNodes.tempDir("zombie-changelog"));

    /**
     * Writes the latest state item of each pending entity, then notes its version as the store reads
     * it (the item's layout stays the store's own) and the item; empties {@code pending}.
     */
    void write(Map<String, ConsumerRecord<byte[], byte[]>> pending, Map<String, Long> versions,
               Map<String, ConsumerRecord<byte[], byte[]>> items) {
      if (pending.isEmpty()) {
        return;
      }
      StoreBatch batch = new StoreBatch();
      pending.values().forEach(record -> batch.putChangelogItem(new ChangelogItem(record.key(), record.value())));
      store.write(batch);
      pending.forEach((key, record) -> {
        versions.put(key, store.get(TYPE, key).version());
        items.put(key, record);
      });
      pending.clear();
    }

    @Override
    public void close() {
      store.close();
    }
  }

  /** The partitions of {@code topic} a node folds, as its readiness lists them. */
  private static Set<Integer> foldedPartitions(KfoldProcess node, String topic) throws IOException {
    Set<Integer> partitions = new TreeSet<>();
    Envelopes.parse(node.fetch("/ready").body().getBytes(StandardCharsets.UTF_8)).path("lag").fieldNames()
        .forEachRemaining(name -> {
          if (name.startsWith(topic + "-")) {
            partitions.add(Integer.parseInt(name.substring(topic.length() + 1)));
          }
        });
    return partitions;
  }

  private static boolean foldsAllCaughtUp(KfoldProcess node) {
    try {
      KfoldProcess.Answer ready = node.fetch("/ready");
      return ready.status() == 200
          && Envelopes.parse(ready.body().getBytes(StandardCharsets.UTF_8)).path("lag").size() == ClusterClient.ALL_PARTITIONS;
    } catch (IOException notYet) {
      return false;
    }
  }

  /** Events the node's fold applied, from its metrics. */
  private static long applied(KfoldProcess node) {
    try {
      Matcher matcher = APPLIED.matcher(node.get("/metrics"));
      assertThat(matcher.find()).as("kfold_fold_events_applied_total in the metrics").isTrue();
      return (long) Double.parseDouble(matcher.group(1));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static void awaitCondition(String what, Duration within, BooleanSupplier condition) throws InterruptedException {
    long deadline = System.currentTimeMillis() + within.toMillis();
    while (!condition.getAsBoolean()) {
      if (System.currentTimeMillis() > deadline) {
        throw new AssertionError("no " + what + " within " + within);
      }
      Thread.sleep(50);
    }
  }

  private static byte[] bytes(String text) {
    return text.getBytes(StandardCharsets.UTF_8);
  }

  /**
   * Threads that append one event at a time to random entities through one node, each retried with
   * its idempotency key until acknowledged, with short attempts so that a write stuck on a frozen
   * node is sent again once another node folds its entity.
   */
  private final class Writers {
    final int port;
    final int partitions;
    final AtomicLong acknowledged = new AtomicLong();
    final AtomicLong acknowledgedOnZombiePartitions = new AtomicLong();
    /** Writes given up after a minute of attempts: the load goes on without them. */
    final AtomicLong abandoned = new AtomicLong();
    volatile Set<Integer> zombiePartitions = Set.of();
    volatile List<String> targets = List.of();
    volatile boolean running;
    ExecutorService threads;

    Writers(int port, int partitions) {
      this.port = port;
      this.partitions = partitions;
    }

    /** The events partition of an entity, as Kafka's default partitioner places its key. */
    int partition(String key) {
      return Utils.toPositive(Utils.murmur2(bytes(key))) % partitions;
    }

    void start(List<String> entities) {
      targets = entities;
      running = true;
      threads = Executors.newFixedThreadPool(WRITERS);
      for (int w = 0; w < WRITERS; w++) {
        int writer = w;
        threads.submit(() -> {
          long n = 0;
          while (running) {
            List<String> now = targets;
            String key = now.get(ThreadLocalRandom.current().nextInt(now.size()));
            n++;
            try {
              cluster.post(port, "/v1/" + TYPE + "/" + key + "/events", "{\"events\":[{\"type\":\"Written\",\"payload\":{\"w\":"
                  + writer + ",\"n\":" + n + ",\"f" + n % 8 + "\":\"" + writer + "-" + n + "\"}}]}",
                  "w" + writer + "-" + n, Duration.ofSeconds(2));
            } catch (AssertionError e) {
              LOG.warn("writer {} gives up a write of {}: {}", writer, key, e.getMessage());
              abandoned.incrementAndGet();
              continue;
            }
            acknowledged.incrementAndGet();
            if (zombiePartitions.contains(partition(key)) && HOT.contains(key)) {
              acknowledgedOnZombiePartitions.incrementAndGet();
            }
          }
          return null;
        });
      }
    }

    void retarget(List<String> entities) {
      targets = entities;
    }

    void stop() throws InterruptedException {
      running = false;
      if (threads != null) {
        threads.shutdown();
        assertThat(threads.awaitTermination(70, TimeUnit.SECONDS)).as("writers stop").isTrue();
        threads = null;
      }
    }
  }
}
