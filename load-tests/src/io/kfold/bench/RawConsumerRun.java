package io.kfold.bench;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The baseline: a plain consumer that reads the input and does nothing with it. It is the ceiling
 * for any fold on this broker and machine, so kfold's rate is reported as a fraction of it.
 */
final class RawConsumerRun {

  static final int MAX_POLL_RECORDS = 10_000;
  private static final long TIMEOUT_SECONDS = 300;

  private RawConsumerRun() {}

  static Map<String, Object> run(String bootstrap, Input input, long brokerPid) {
    Map<String, Object> conf = new LinkedHashMap<>();
    conf.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    // A group of its own: kfold's group (the app id) must start from nothing.
    conf.put(ConsumerConfig.GROUP_ID_CONFIG, input.app + "-raw-baseline");
    conf.put(ConsumerConfig.CLIENT_ID_CONFIG, input.app + "-raw-baseline");
    conf.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    conf.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    conf.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, MAX_POLL_RECORDS);

    Meter meter = Meter.start(brokerPid);
    long subscribed = System.nanoTime();
    long first = -1;
    long firstBatch = 0;
    long count = 0;
    long bytes = 0;
    long deadline = subscribed + TimeUnit.SECONDS.toNanos(TIMEOUT_SECONDS);
    long last;
    Map<String, Object> resources;
    try (KafkaConsumer<byte[], byte[]> consumer =
             new KafkaConsumer<>(conf, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
      consumer.subscribe(List.of(input.topic));
      while (count < input.events) {
        ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(100));
        if (!records.isEmpty() && first < 0) {
          first = System.nanoTime();
          firstBatch = records.count();
        }
        // Touch every record, as any real reader must, so the loop cannot be reduced to counting batches.
        for (ConsumerRecord<byte[], byte[]> record : records) {
          bytes += record.serializedKeySize() + record.serializedValueSize();
          count++;
        }
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException("the raw consumer read " + count + " of " + input.events
              + " records in " + TIMEOUT_SECONDS + " s");
        }
      }
      last = System.nanoTime();
      // Before close(): leaving the group is not reading.
      resources = meter.sample();
    }
    // The records of the first poll arrived at `first`, so the steady rate counts only those after it.
    double steadySeconds = (last - first) / 1e9;
    double totalSeconds = (last - subscribed) / 1e9;
    Map<String, Object> result = new LinkedHashMap<>();
    result.put("records", count);
    result.put("bytes", bytes);
    result.put("maxPollRecords", MAX_POLL_RECORDS);
    result.put("eventsPerSecond", Math.round((count - firstBatch) / steadySeconds));
    result.put("firstToLastSeconds", Report.round(steadySeconds, 3));
    result.put("secondsToFirstRecord", Report.round((first - subscribed) / 1e9, 3));
    result.put("eventsPerSecondFromSubscribe", Math.round(count / totalSeconds));
    result.put("resources", resources);
    return result;
  }
}
