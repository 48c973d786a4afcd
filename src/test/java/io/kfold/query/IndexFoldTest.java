package io.kfold.query;

import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.vertx.core.Vertx;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * Index entries against a real broker and a real RocksDB store: after a random history (values
 * that change, members removed by merge-patch null, arrays), every index holds exactly the values
 * the states hold, and every query answers what a filter over all states answers, page by page;
 * after a restart on the same store, and after a restore from the changelog on an empty node.
 */
@ExtendWith(TestBroker.class)
class IndexFoldTest {

  private static final int[] PAGE_SIZES = {1, 7, 1000};

  private final IndexModel model = new IndexModel(300, 13);

  @Test
  @DisplayName("indexes equal a filter over all states after a random history, a restart, and a restore on an empty node;"
      + " every page walk at sizes 1, 7 and 1000 returns each match once")
  void indexesFollowStates() throws Exception {
    String app = TestNodes.newApp("index");
    Path firstDir = TestNodes.tempDir("index-a");
    Vertx vertx = Vertx.vertx();
    try (KafkaProducer<byte[], byte[]> producer = TestNodes.plainProducer()) {
      NodeConfig first = NodeConfig.load(IndexModel.env(app, firstDir));
      NodeRuntime node = TestNodes.startCaughtUp(vertx, first);
      writeRandomHistory(producer, first, 2500);
      awaitFolded(node, first);
      check(node, "after the first half");
      node.stop().await(60, TimeUnit.SECONDS);

      writeRandomHistory(producer, first, 2500);
      node = TestNodes.startCaughtUp(vertx, first);
      awaitFolded(node, first);
      check(node, "after a restart on the same store");
      node.stop().await(60, TimeUnit.SECONDS);

      NodeConfig fresh = NodeConfig.load(IndexModel.env(app, TestNodes.tempDir("index-b")));
      node = TestNodes.startCaughtUp(vertx, fresh);
      awaitFolded(node, fresh);
      check(node, "after a restore on an empty node");
      node.stop().await(60, TimeUnit.SECONDS);
    } finally {
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  private void check(NodeRuntime node, String when) throws Exception {
    model.checkStore(node.store(), when);
    model.checkQueries(IndexModel.local(node.store()), when, PAGE_SIZES);
  }

  /** Patches from an outside producer: set, change or remove (null) tags, n and the city, at random. */
  private void writeRandomHistory(KafkaProducer<byte[], byte[]> producer, NodeConfig config, int events) throws Exception {
    List<Future<RecordMetadata>> sent = new ArrayList<>();
    for (int i = 0; i < events; i++) {
      sent.add(producer.send(model.nextPatch(config.eventsTopic(IndexModel.TYPE))));
    }
    producer.flush();
    for (Future<RecordMetadata> one : sent) {
      model.sent(one.get(30, TimeUnit.SECONDS));
    }
  }

  /** Waits until the node's store has folded every event written (a sentinel per partition, no sleep as evidence). */
  private void awaitFolded(NodeRuntime node, NodeConfig config) throws InterruptedException {
    long deadline = System.currentTimeMillis() + 60_000;
    for (Map.Entry<Integer, Long> partition : model.written().entrySet()) {
      while (node.store().nextOffset(config.eventsTopic(IndexModel.TYPE), partition.getKey()).orElse(0)
          < partition.getValue()) {
        if (System.currentTimeMillis() > deadline) {
          throw new AssertionError("partition " + partition.getKey() + " not folded to " + partition.getValue());
        }
        Thread.sleep(20);
      }
    }
  }
}
