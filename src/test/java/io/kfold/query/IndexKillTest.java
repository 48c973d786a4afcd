package io.kfold.query;

import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.KfoldProcess;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.store.RocksEntityStore;
import io.vertx.core.Vertx;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.net.http.HttpClient;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Index entries across kill -9: a node in a separate process folds a random history of 50,000
 * merge patches (values that change, members removed by null, arrays) and is killed with SIGKILL
 * while it folds, twice. At each kill, its store's indexes hold exactly the values of the
 * states it holds; restarted on the same store, it folds the rest, and its indexes and queries equal a filter over
 * the test's own fold of the history; so do those of a node restored on an empty store from the
 * changelog.
 */
@ExtendWith(TestBroker.class)
class IndexKillTest {

  private static final Logger LOG = LoggerFactory.getLogger(IndexKillTest.class);
  private static final int KEYS = 2_500;
  private static final int EVENTS = 50_000;
  /** Kills during the history, each after the node has applied this many events since its start. */
  private static final int KILLS = 2;
  private static final int KILL_EVERY = 12_000;
  /** System property that fixes the seed of the kill times, to replay a failed run. */
  private static final String SEED_PROPERTY = "kfold.indexkill.seed";
  /** Page sizes of the walks over HTTP (size 1 is walked in IndexFoldTest and QueryPaginationTest). */
  private static final int[] PAGE_SIZES = {7, 1000};

  private final IndexModel model = new IndexModel(KEYS, 50);
  private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

  @Test
  @DisplayName("at two kills -9 mid-fold, after restarts, and after a restore on an empty node, every index equals a filter over all"
      + " states and every page walk returns each match once")
  void indexesSurviveKillNine() throws Exception {
    String app = TestNodes.newApp("index-kill");
    Path dir = TestNodes.tempDir("index-kill-a");
    Map<String, String> env = IndexModel.env(app, dir);
    // Small polls: many store writes, so that the kill lands among them.
    env.put("KFOLD_FOLD_MAX_POLL_RECORDS", "500");
    // Static membership: the restarted process, and then the node on the empty store, take the
    // partitions at once instead of waiting for the group to time the previous one out.
    env.put("KFOLD_KAFKA_GROUP_INSTANCE_ID", "index-kill-node");
    NodeConfig config = NodeConfig.load(env);
    String topic = config.eventsTopic(IndexModel.TYPE);
    KfoldProcess kfold = new KfoldProcess(env, Path.of("target", "index-kill-" + app + ".log"));
    Vertx vertx = Vertx.vertx();
    NodeRuntime restored = null;
    CompletableFuture<Void> producing = null;
    try {
      kfold.start();
      kfold.awaitStatus("/ready", 200);
      producing = CompletableFuture.runAsync(() -> produce(topic));

      long seed = Long.getLong(SEED_PROPERTY, new Random().nextLong());
      Random jitter = new Random(seed);
      for (int kill = 1; kill <= KILLS; kill++) {
        long applied = awaitApplied(kfold, KILL_EVERY);
        // Somewhere in the next poll's fold, store write or publish, not always the same point of it.
        Thread.sleep(jitter.nextInt(60));
        kfold.kill();
        try (RocksEntityStore store = new RocksEntityStore(dir.resolve("store"))) {
          long folded = 0;
          for (int p = 0; p < config.kafka().partitions(); p++) {
            folded += store.nextOffset(topic, p).orElse(0);
          }
          LOG.info("kill {}: SIGKILL after {} events applied since the start, {} folded in the store (seed {}, replay"
              + " with -D{}={})", kill, applied, folded, seed, SEED_PROPERTY, seed);
          assertThat(folded).as("events folded at kill %d: some, not all", kill).isBetween(1L, EVENTS - 1L);
          model.checkEntriesMatchStates(store, "at kill " + kill + ", " + folded + " events folded");
        }
        kfold.start();
      }

      producing.get(120, TimeUnit.SECONDS);
      TestNodes.awaitFolded(kfold.port(), IndexModel.TYPE, topic, model.written(), Duration.ofSeconds(90));
      LOG.info("all {} events folded after the kills; checking", EVENTS);
      String when = "after kills -9 mid-fold and restarts on the same store";
      model.checkQueries(IndexModel.http(http, kfold.port()), when, PAGE_SIZES);
      kfold.stop();  // a clean stop, so that the test can open the store
      try (RocksEntityStore store = new RocksEntityStore(dir.resolve("store"))) {
        model.checkStore(store, when);
      }

      Map<String, String> emptyEnv = IndexModel.env(app, TestNodes.tempDir("index-kill-b"));
      emptyEnv.put("KFOLD_KAFKA_GROUP_INSTANCE_ID", "index-kill-node");
      restored = TestNodes.startCaughtUp(vertx, NodeConfig.load(emptyEnv));
      TestNodes.awaitFolded(restored.httpPort(), IndexModel.TYPE, topic, model.written(), Duration.ofSeconds(90));
      LOG.info("restored on an empty node; checking");
      when = "after a restore on an empty node";
      model.checkStore(restored.store(), when);
      model.checkQueries(IndexModel.http(http, restored.httpPort()), when, PAGE_SIZES);
    } finally {
      if (producing != null) {
        producing.cancel(true);
      }
      kfold.stopIfAlive();
      if (restored != null) {
        restored.stop().await(60, TimeUnit.SECONDS);
      }
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  /** Writes the history at a bounded pace, so that the node is still folding when it is killed. */
  private void produce(String topic) {
    List<Future<RecordMetadata>> sent = new ArrayList<>();
    try (KafkaProducer<byte[], byte[]> producer = TestNodes.plainProducer()) {
      for (int i = 0; i < EVENTS; i++) {
        sent.add(producer.send(model.nextPatch(topic)));
        if (i % 1_000 == 999) {
          Thread.sleep(100);  // pacing only: the history lasts longer than the kills
        }
      }
      producer.flush();
      for (Future<RecordMetadata> one : sent) {
        model.sent(one.get(30, TimeUnit.SECONDS));
      }
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  /** Polls the node's metrics until it has applied {@code events} events; answers how many it had. */
  private static long awaitApplied(KfoldProcess kfold, long events) throws Exception {
    long deadline = System.currentTimeMillis() + 60_000;
    while (System.currentTimeMillis() < deadline) {
      for (String line : kfold.get("/metrics").split("\n")) {
        if (line.startsWith("kfold_fold_events_applied_total ")) {
          long applied = (long) Double.parseDouble(line.substring(line.indexOf(' ') + 1).trim());
          if (applied >= events) {
            return applied;
          }
        }
      }
      Thread.sleep(10);
    }
    throw new AssertionError("the node did not apply " + events + " events within 60 s");
  }
}
