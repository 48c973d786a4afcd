package io.kfold.fold;

import io.kfold.config.NodeConfig;
import io.kfold.RunningNode;
import io.kfold.TestBroker;
import io.kfold.TestLog;
import io.kfold.TestNodes;
import io.kfold.entity.EntityType;
import io.kfold.types.EntityTypes;
import io.kfold.log.KafkaClients;
import io.kfold.log.Topics;
import io.kfold.store.RocksEntityStore;
import io.kfold.store.StoreBatch;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Dead letters after a node died between publishing and the acknowledgement, or before it. The
 * crash is simulated exactly, without racing a kill: the test folds a poll with the fold itself
 * into the store the next node opens (or into a scratch store, for a node that died with its
 * disk), and writes to the topics what the dead node's producer had sent.
 */
@ExtendWith(TestBroker.class)
class DeadLetterRepublishTest {

  @Test
  @DisplayName("a dead letter that reached its topic but was not acknowledged when its node died is not published again"
      + " from the outbox when the node comes back")
  void deadLetterSentButNotAcknowledged() throws Exception {
    Path dir = TestNodes.tempDir("dlq-unacknowledged");
    NodeConfig config = TestNodes.config(TestNodes.newApp("dlq-unacknowledged"), dir);
    createTopics(config);
    TopicPartition events = new TopicPartition(config.eventsTopic("users"), 0);
    List<ConsumerRecord<byte[], byte[]>> log = append(events, "not json", "{\"a\":1}");
    // The node folded the poll and wrote it with its outbox, sent the dead letter and the change,
    // and died before either acknowledgement came back: both are in their topics, the outbox holds both.
    try (RocksEntityStore store = new RocksEntityStore(dir.resolve("store"))) {
      send(foldAndWrite(config, store, events, log));
    }
    try (RunningNode node = RunningNode.start(config)) {
      awaitOutboxCleared(node, events);
    }
    assertThat(sourceOffsets(config.deadLetterTopic("users"), events)).as("dead letters of offset").containsExactly(0L);
    assertThat(sourceOffsets(config.changesTopic("users"), events)).as("changes of offset").containsExactly(1L);
  }

  @Test
  @DisplayName("a dead letter that its dying node never sent, before changes that it did publish, is published once by the"
      + " node that folds the partition again from the log")
  void deadLetterNeverSent() throws Exception {
    NodeConfig config = TestNodes.config(TestNodes.newApp("dlq-unsent"), TestNodes.tempDir("dlq-unsent"));
    createTopics(config);
    TopicPartition events = new TopicPartition(config.eventsTopic("users"), 0);
    List<ConsumerRecord<byte[], byte[]>> log = append(events, "{\"a\":1}", "not json", "{\"b\":2}");
    // The previous owner's changes reached the changes topic, its dead letter did not, and it died
    // with its disk before sending any changelog: the next owner folds the partition from the start.
    try (RocksEntityStore lost = new RocksEntityStore(TestNodes.tempDir("dlq-unsent-lost").resolve("store"))) {
      send(foldAndWrite(config, lost, events, log).stream()
          .filter(record -> record.topic().equals(config.changesTopic("users"))).toList());
    }
    try (RunningNode node = RunningNode.start(config)) {
      awaitOutboxCleared(node, events);
    }
    assertThat(sourceOffsets(config.deadLetterTopic("users"), events)).as("dead letters of offset").containsExactly(1L);
    assertThat(sourceOffsets(config.changesTopic("users"), events)).as("changes of offset").containsExactly(0L, 2L);
  }

  private static void createTopics(NodeConfig config) throws Exception {
    try (Admin admin = Admin.create(KafkaClients.admin(config.kafka(), config.app() + "-test"))) {
      Topics.ensure(admin, config, EntityTypes.from(config).all().stream().map(EntityType::name).toList());
    }
  }

  /** Appends the values under key k to the events partition; answers them as the fold's consumer reads them. */
  private static List<ConsumerRecord<byte[], byte[]>> append(TopicPartition events, String... values) throws Exception {
    List<ConsumerRecord<byte[], byte[]>> records = new ArrayList<>();
    try (KafkaProducer<byte[], byte[]> producer = TestNodes.plainProducer()) {
      for (String value : values) {
        byte[] key = "k".getBytes(StandardCharsets.UTF_8);
        byte[] bytes = value.getBytes(StandardCharsets.UTF_8);
        long offset = producer.send(new ProducerRecord<>(events.topic(), events.partition(), key, bytes)).get().offset();
        records.add(new ConsumerRecord<>(events.topic(), events.partition(), offset, key, bytes));
      }
    }
    return records;
  }

  /** Folds the records as one poll into the store, as the fold does; answers what it would publish. */
  private static List<ProducerRecord<String, byte[]>> foldAndWrite(NodeConfig config, RocksEntityStore store,
                                                                   TopicPartition events,
                                                                   List<ConsumerRecord<byte[], byte[]>> records) {
    Fold fold = new Fold(config, EntityTypes.from(config), store, new FoldProgress());
    try {
      StoreBatch batch = new StoreBatch();
      Fold.Result result = fold.fold(new ConsumerRecords<>(Map.of(events, records), Map.of()), batch);
      store.write(batch);
      return result.toPublish().get(events);
    } finally {
      fold.close();
    }
  }

  private static void send(List<ProducerRecord<String, byte[]>> records) throws Exception {
    try (KafkaProducer<byte[], byte[]> producer = TestNodes.plainProducer()) {
      for (ProducerRecord<String, byte[]> record : records) {
        producer.send(new ProducerRecord<>(record.topic(), record.partition(), null,
            record.key() == null ? null : record.key().getBytes(StandardCharsets.UTF_8), record.value(),
            record.headers())).get();
      }
    }
  }

  /** Once the outbox of the partition is cleared, what it held is published and acknowledged. */
  private static void awaitOutboxCleared(RunningNode node, TopicPartition events) throws InterruptedException {
    long deadline = System.currentTimeMillis() + 30_000;
    while (!node.node().store().outboxByOffset(events.topic(), events.partition()).isEmpty()) {
      assertThat(System.currentTimeMillis()).as("the outbox of %s is cleared", events).isLessThan(deadline);
      Thread.sleep(20);
    }
  }

  /** The source offsets of the records of a topic that come from the events partition, in log order. */
  private static List<Long> sourceOffsets(String topic, TopicPartition events) {
    List<Long> offsets = new ArrayList<>();
    for (ConsumerRecord<byte[], byte[]> record : TestLog.records(topic)) {
      Header partition = record.headers().lastHeader("kfold.source.partition");
      boolean fromEvents = partition == null ? record.partition() == events.partition()
          : new String(partition.value(), StandardCharsets.UTF_8).equals(Integer.toString(events.partition()));
      if (fromEvents) {
        offsets.add(Long.parseLong(new String(record.headers().lastHeader("kfold.source.offset").value(),
            StandardCharsets.UTF_8)));
      }
    }
    return offsets;
  }
}
