package io.kfold;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.types.Envelopes;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** Reads a topic from its beginning to its current end: what the log itself holds, not what a node answered. */
public final class TestLog {

  private TestLog() {}

  public static List<ConsumerRecord<byte[], byte[]>> records(String topic) {
    return records(topic, "read_uncommitted");
  }

  /**
   * What a consumer with {@code isolation.level=read_committed} reads of a topic, from its beginning
   * to its last stable offset: no record of an aborted or still open transaction.
   */
  public static List<ConsumerRecord<byte[], byte[]>> committedRecords(String topic) {
    return records(topic, "read_committed");
  }

  private static List<ConsumerRecord<byte[], byte[]>> records(String topic, String isolationLevel) {
    Map<String, Object> conf = Map.of(
        ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, TestBroker.bootstrap(),
        ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolationLevel,
        ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 10_000,
        ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class,
        ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
    List<ConsumerRecord<byte[], byte[]>> records = new ArrayList<>();
    try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(conf)) {
      List<TopicPartition> partitions = consumer.partitionsFor(topic).stream()
          .map(p -> new TopicPartition(topic, p.partition())).toList();
      consumer.assign(partitions);
      consumer.seekToBeginning(partitions);
      Map<TopicPartition, Long> end = consumer.endOffsets(partitions);
      long deadline = System.currentTimeMillis() + 60_000;
      while (partitions.stream().anyMatch(p -> consumer.position(p) < end.get(p))) {
        if (System.currentTimeMillis() > deadline) {
          throw new AssertionError("could not read " + topic + " to its end within 60 s");
        }
        consumer.poll(Duration.ofMillis(200)).forEach(records::add);
      }
    }
    return records;
  }

  /**
   * Moves every committed offset of a consumer group back to 0, as if it had never read anything:
   * its next member delivers everything again. The group must have no member.
   */
  public static void rewind(String group) throws Exception {
    try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, TestBroker.bootstrap()))) {
      var offsets = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
      if (offsets.isEmpty()) {
        throw new AssertionError("group " + group + " has committed nothing to rewind");
      }
      Map<TopicPartition, OffsetAndMetadata> rewound = new HashMap<>();
      offsets.keySet().forEach(partition -> rewound.put(partition, new OffsetAndMetadata(0)));
      admin.alterConsumerGroupOffsets(group, rewound).all().get(30, TimeUnit.SECONDS);
    }
  }

  /** The envelopes of one entity in an events topic, in log order. */
  public static List<JsonNode> events(String topic, String key) {
    List<JsonNode> events = new ArrayList<>();
    for (ConsumerRecord<byte[], byte[]> record : records(topic)) {
      if (key.equals(new String(record.key(), StandardCharsets.UTF_8))) {
        try {
          events.add(Envelopes.parse(record.value()));
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
      }
    }
    return events;
  }
}
