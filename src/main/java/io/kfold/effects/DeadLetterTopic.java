package io.kfold.effects;

import io.kfold.entity.Envelopes;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;

import java.io.IOException;
import java.time.Duration;
import java.util.List;
import java.util.Map;

/** Reads a worker's dead-letter topic from its beginning to its end, into a {@link ParkingLot}. */
final class DeadLetterTopic {

  private DeadLetterTopic() {}

  /** Blocks: run it on a worker thread. */
  static ParkingLot read(String bootstrap, String topic) throws IOException {
    Map<String, Object> conf = Map.of(
        ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
        ConsumerConfig.CLIENT_ID_CONFIG, topic + "-reader",
        ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    ParkingLot lot = new ParkingLot();
    try (KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(conf, new StringDeserializer(),
        new ByteArrayDeserializer())) {
      List<TopicPartition> partitions = consumer.partitionsFor(topic, Duration.ofSeconds(30)).stream()
          .map(p -> new TopicPartition(topic, p.partition())).toList();
      consumer.assign(partitions);
      consumer.seekToBeginning(partitions);
      Map<TopicPartition, Long> end = consumer.endOffsets(partitions, Duration.ofSeconds(30));
      long deadline = System.currentTimeMillis() + 120_000;
      while (partitions.stream().anyMatch(p -> consumer.position(p) < end.get(p))) {
        if (System.currentTimeMillis() > deadline) {
          throw new IOException("cannot read " + topic + " to its end within 120 s");
        }
        for (ConsumerRecord<String, byte[]> record : consumer.poll(Duration.ofMillis(200))) {
          lot.apply(record.key(), Envelopes.parse(record.value()));
        }
      }
    }
    return lot;
  }
}
