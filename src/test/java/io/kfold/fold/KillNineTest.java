package io.kfold.fold;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.config.NodeConfig;
import io.kfold.KfoldProcess;
import io.kfold.TestBroker;
import io.kfold.TestLog;
import io.kfold.TestNodes;
import io.kfold.types.Envelopes;
import io.kfold.store.RocksEntityStore;
import io.kfold.store.StoredEntity;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.Header;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Runs kfold as a separate process and kills it with SIGKILL, again and again, while events keep
 * arriving. The events carry no version, so the fold numbers them itself: an event applied twice
 * or lost would show as a wrong version, a gap or a wrong order in the history.
 *
 * <p>The kill times are random; the seed is logged with them, and {@code -Dkfold.kill9.seed=N}
 * replays the same ones.
 */
@ExtendWith(TestBroker.class)
class KillNineTest {

  private static final int KEYS = 2_000;
  private static final int EVENTS = 150_000;
  private static final int KILLS = 4;
  private static final Logger LOG = LoggerFactory.getLogger(KillNineTest.class);
  /** System property that fixes the seed of the kill times, to replay a failed run. */
  private static final String SEED_PROPERTY = "kfold.kill9.seed";

  @Test
  @DisplayName("kill -9 during the fold, four times: every event is applied exactly once, in order, and published")
  void killNineLosesNothingAndAppliesNothingTwice() throws Exception {
    String app = TestNodes.newApp("kill9");
    Path dataDir = TestNodes.tempDir("kill9");
    Map<String, String> env = TestNodes.env(app, dataDir);
    env.put("KFOLD_FOLD_MAX_POLL_RECORDS", "500");
    // Static membership: the restarted process takes its partitions back without waiting for the
    // group to time the killed one out.
    env.put("KFOLD_KAFKA_GROUP_INSTANCE_ID", "kill9-node");
    NodeConfig config = NodeConfig.load(env);
    KfoldProcess kfold = new KfoldProcess(env, Path.of("target", "kill9-" + app + ".log"));
    kfold.start();

    long seed = Long.getLong(SEED_PROPERTY, new Random().nextLong());
    Random random = new Random(seed);
    long[] delays = new long[KILLS];
    Arrays.setAll(delays, i -> 800 + random.nextInt(1500));
    LOG.info("kill times (ms after each start): {}; seed {} (replay with -D{}={})", Arrays.toString(delays), seed,
        SEED_PROPERTY, seed);

    Map<String, List<Integer>> produced = new HashMap<>();
    Map<Integer, Long> endOffsets = new ConcurrentHashMap<>();
    CompletableFuture<Void> producing = CompletableFuture.runAsync(() -> produce(config, produced, endOffsets));
    int kills = 0;
    while (kills < KILLS) {
      Thread.sleep(delays[kills]);
      kfold.kill();
      kills++;
      kfold.start();
      LOG.info("kill {} done {} ms after the start, kfold restarted (seed {})", kills, delays[kills - 1], seed);
    }
    producing.get(120, TimeUnit.SECONDS);
    LOG.info("all {} events produced after {} kills; waiting for the fold to catch up", EVENTS, kills);
    // Not /ready: a node is ready once it has read each partition to its end once since its start,
    // which it may do before the last events are written; then it stops with them not folded.
    TestNodes.awaitFolded(kfold.port(), "users", config.eventsTopic("users"), endOffsets, Duration.ofSeconds(120));
    LOG.info("caught up; stopping kfold");
    kfold.stop();  // a clean stop, so the test can open the store
    LOG.info("stopped; checking the store and the changes topic");

    Set<String> expectedChanges = new HashSet<>();
    try (RocksEntityStore store = new RocksEntityStore(dataDir.resolve("store"))) {
      for (Map.Entry<String, List<Integer>> entity : produced.entrySet()) {
        String key = entity.getKey();
        List<Integer> ids = entity.getValue();
        StoredEntity stored = store.get("users", key);
        assertThat(stored).as(key).isNotNull();
        assertThat(stored.version()).as("version of %s: one per event", key).isEqualTo(ids.size());
        assertThat(Envelopes.parse(stored.state()).path("eid").asInt()).as("last event of %s", key)
            .isEqualTo(ids.get(ids.size() - 1));
        List<byte[]> history = store.history("users", key, 1, Integer.MAX_VALUE);
        assertThat(history).as("history of %s", key).hasSize(ids.size());
        for (int v = 1; v <= ids.size(); v++) {
          JsonNode event = Envelopes.parse(history.get(v - 1));
          assertThat(event.path("version").asLong()).isEqualTo(v);
          assertThat(event.path("payload").path("eid").asInt()).as("event %d of %s", v, key).isEqualTo(ids.get(v - 1));
          expectedChanges.add(key + ":" + v);
        }
      }
    }
    assertThat(expectedChanges).hasSize(EVENTS);
    // The outbox survives the kills: every accepted event reaches the changes topic at least once,
    // in a committed transaction (a record of an aborted one is never read by kfold's readers).
    List<ConsumerRecord<byte[], byte[]>> committed = TestLog.committedRecords(config.changesTopic("users"));
    Set<String> published = new HashSet<>(changesById(committed).keySet());
    assertThat(expectedChanges.stream().filter(id -> !published.contains(id)).toList()).as("changes never published")
        .isEmpty();
    // A change published again after a kill is the same record: readers that de-duplicate by id,
    // and at-most-once workers that act on whichever copy they read first, see one change.
    List<ConsumerRecord<byte[], byte[]>> all = TestLog.records(config.changesTopic("users"));
    int copies = assertCopiesEqual(all);
    int committedCopies = assertCopiesEqual(committed);
    LOG.info("changes topic: {} records for {} changes, {} extra copies ({} of them committed, the rest in aborted"
        + " transactions); all copies byte-equal", all.size(), EVENTS, copies, committedCopies);
    // With transactions (the default) a change republished after a kill replaces an aborted copy only:
    // the published mark is read from the committed topic, so no committed change is written twice.
    assertThat(committedCopies).as("committed changes written twice").isZero();
  }

  /** Writes the events at a bounded rate, so that the kills land while the fold is busy. */
  private static void produce(NodeConfig config, Map<String, List<Integer>> produced, Map<Integer, Long> endOffsets) {
    Random random = new Random(7);
    try (KafkaProducer<byte[], byte[]> producer = TestNodes.plainProducer()) {
      for (int i = 0; i < EVENTS; i++) {
        String key = "u" + random.nextInt(KEYS);
        produced.computeIfAbsent(key, k -> new ArrayList<>()).add(i);
        String value = "{\"eid\":" + i + ",\"f" + (i % 5) + "\":" + random.nextInt(100) + "}";
        producer.send(new ProducerRecord<>(config.eventsTopic("users"), key.getBytes(StandardCharsets.UTF_8),
            value.getBytes(StandardCharsets.UTF_8)), (written, error) -> {
              if (written != null) {
                endOffsets.merge(written.partition(), written.offset() + 1, Math::max);
              }
            });
        if (i % 2_000 == 1_999) {
          Thread.sleep(60);
        }
      }
      producer.flush();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  /** The change records by change id, each id's copies in log order. */
  private static Map<String, List<ConsumerRecord<byte[], byte[]>>> changesById(
      List<ConsumerRecord<byte[], byte[]>> records) throws IOException {
    Map<String, List<ConsumerRecord<byte[], byte[]>>> byId = new HashMap<>();
    for (ConsumerRecord<byte[], byte[]> record : records) {
      byId.computeIfAbsent(Envelopes.parse(record.value()).path("id").asText(), id -> new ArrayList<>()).add(record);
    }
    return byId;
  }

  /**
   * Asserts that every copy of a change is byte for byte its first copy: partition, key, value and
   * headers. Answers the number of copies beyond the first.
   */
  private static int assertCopiesEqual(List<ConsumerRecord<byte[], byte[]>> records) throws IOException {
    int extra = 0;
    for (Map.Entry<String, List<ConsumerRecord<byte[], byte[]>>> change : changesById(records).entrySet()) {
      List<ConsumerRecord<byte[], byte[]>> copies = change.getValue();
      ConsumerRecord<byte[], byte[]> first = copies.get(0);
      for (ConsumerRecord<byte[], byte[]> copy : copies.subList(1, copies.size())) {
        extra++;
        if (!sameBytes(first, copy)) {
          throw new AssertionError("change " + change.getKey() + " has copies in the changes topic that differ:\n  at "
              + describe(first) + "\n  at " + describe(copy));
        }
      }
    }
    return extra;
  }

  private static boolean sameBytes(ConsumerRecord<byte[], byte[]> a, ConsumerRecord<byte[], byte[]> b) {
    Header[] headersA = a.headers().toArray();
    Header[] headersB = b.headers().toArray();
    if (a.partition() != b.partition() || !Arrays.equals(a.key(), b.key()) || !Arrays.equals(a.value(), b.value())
        || headersA.length != headersB.length) {
      return false;
    }
    for (int i = 0; i < headersA.length; i++) {
      if (!headersA[i].key().equals(headersB[i].key()) || !Arrays.equals(headersA[i].value(), headersB[i].value())) {
        return false;
      }
    }
    return true;
  }

  private static String describe(ConsumerRecord<byte[], byte[]> record) {
    StringBuilder text = new StringBuilder().append(record.partition()).append('@').append(record.offset())
        .append(" key=").append(record.key() == null ? null : new String(record.key(), StandardCharsets.UTF_8))
        .append(" headers=[");
    for (Header header : record.headers()) {
      text.append(header.key()).append('=').append(new String(header.value(), StandardCharsets.UTF_8)).append(' ');
    }
    return text.append("] value=").append(new String(record.value(), StandardCharsets.UTF_8)).toString();
  }
}
