package io.kfold.bench;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.serialization.ByteArraySerializer;

import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.LongFunction;

/**
 * One benchmark input: {@code events} events spread over {@code keys} entities of type {@code users},
 * written once to {@code <app>.users.events} and then read by both the baseline and kfold.
 *
 * <p>Event {@code i} belongs to entity {@code i % keys}, so every entity gets the same number of events
 * and consecutive records of a partition belong to different entities. That is the unfavourable case
 * for a fold that reads and writes each entity once per poll: a poll touches about as many entities
 * as it holds records (while it holds fewer records than the partition has entities).
 *
 * <p>The values are bare JSON objects without a {@code payload} member, i.e. events from an outside
 * producer: the fold gives each the next version of its entity and merges it into the state.
 */
final class Input {

  static final int PARTITIONS = 4;
  /** Size of every record value, so the byte counts of a run follow from its record count. */
  static final int VALUE_BYTES = 100;
  /** Distinct fields per entity: the state of an entity settles at this many fields plus {@code n}. */
  static final int FIELDS = 8;
  static final String TYPE = "users";

  private static final String FILLER = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".repeat(2);

  final String app;
  final String topic;
  final long events;
  final int keys;

  Input(long events, int keys) {
    // One application id per input: its own topics, its own fold group, nothing shared between inputs.
    this("fold-bench-k" + keys, events, keys);
  }

  Input(String app, long events, int keys) {
    this.events = events;
    this.keys = keys;
    this.app = app;
    this.topic = app + "." + TYPE + ".events";
  }

  String label() {
    return String.format("%,d events / %,d keys", events, keys);
  }

  static String key(long entity) {
    return "user-" + entity;
  }

  /** Events each entity gets, and so the version every entity must end at. */
  long eventsPerKey() {
    return events / keys;
  }

  /**
   * The value of event {@code i}: {@code n} counts the entity's events from 0, and the one other field
   * rotates through {@code f0..f7}, so a correct fold ends with {@code n = eventsPerKey - 1} on every entity.
   */
  static byte[] value(long i, int keys) {
    long n = i / keys;
    StringBuilder json = new StringBuilder(VALUE_BYTES);
    json.append("{\"n\":").append(n).append(",\"f").append(n % FIELDS).append("\":\"v").append(i).append('-');
    json.append(FILLER, 0, VALUE_BYTES - json.length() - 2).append("\"}");
    return json.toString().getBytes(StandardCharsets.US_ASCII);
  }

  /**
   * Creates the events topic as kfold would (retention -1), before anything is produced, and waits
   * for every partition to have a leader: producing earlier can fail with NotLeaderOrFollower.
   */
  void createTopic(Admin admin) throws InterruptedException, ExecutionException, TimeoutException {
    createTopic(admin, topic);
  }

  /** {@link #createTopic(Admin)} for any events topic, such as the query benchmark's orders. */
  static void createTopic(Admin admin, String topic) throws InterruptedException, ExecutionException,
      TimeoutException {
    NewTopic newTopic = new NewTopic(topic, PARTITIONS, (short) 1)
        .configs(Map.of("retention.ms", "-1", "cleanup.policy", "delete"));
    admin.createTopics(List.of(newTopic)).all().get(30, TimeUnit.SECONDS);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (true) {
      try {
        TopicDescription description = admin.describeTopics(List.of(topic)).allTopicNames()
            .get(10, TimeUnit.SECONDS).get(topic);
        if (description.partitions().size() == PARTITIONS && description.partitions().stream()
            .map(TopicPartitionInfo::leader).allMatch(leader -> leader != null && !leader.isEmpty())) {
          // A leader in the metadata is not yet a leader that takes writes: a produce that came too
          // early was refused with NOT_LEADER_OR_FOLLOWER, and the idempotent producer's later
          // batches then failed as out of order until they expired. Every leader must answer first.
          // (kfold's Topics.awaitLeaders does the same, but this class is also compiled into the
          // Streams app, which has none of kfold's classes.)
          Map<TopicPartition, OffsetSpec> ends = new LinkedHashMap<>();
          for (int partition = 0; partition < PARTITIONS; partition++) {
            ends.put(new TopicPartition(topic, partition), OffsetSpec.latest());
          }
          admin.listOffsets(ends).all().get(10, TimeUnit.SECONDS);
          return;
        }
      } catch (ExecutionException metadataNotThereYet) {
        // try again below
      }
      if (System.nanoTime() > deadline) {
        throw new TimeoutException("partitions of " + topic + " have no leader after 30 s");
      }
      Thread.sleep(100);
    }
  }

  /** Writes the whole input with a producer tuned for throughput; returns what it took. */
  Map<String, Object> produce(String bootstrap) throws InterruptedException {
    return produce(bootstrap, app + "-input", topic, events, i -> key(i % keys), i -> value(i, keys));
  }

  /**
   * Writes records {@code 0..count-1} to {@code topic} with a producer tuned for throughput (acks=all,
   * linger 20 ms, 256 KB batches) and waits until the broker acknowledged them all; returns what it took.
   */
  static Map<String, Object> produce(String bootstrap, String clientId, String topic, long count,
                                     LongFunction<String> key, LongFunction<byte[]> value) throws InterruptedException {
    Map<String, Object> conf = new LinkedHashMap<>();
    conf.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    conf.put(ProducerConfig.CLIENT_ID_CONFIG, clientId);
    conf.put(ProducerConfig.ACKS_CONFIG, "all");
    conf.put(ProducerConfig.LINGER_MS_CONFIG, 20);
    conf.put(ProducerConfig.BATCH_SIZE_CONFIG, 256 * 1024);
    AtomicReference<Exception> failure = new AtomicReference<>();
    long start = System.nanoTime();
    try (KafkaProducer<byte[], byte[]> producer =
             new KafkaProducer<>(conf, new ByteArraySerializer(), new ByteArraySerializer())) {
      for (long i = 0; i < count && failure.get() == null; i++) {
        producer.send(new ProducerRecord<>(topic, key.apply(i).getBytes(StandardCharsets.UTF_8), value.apply(i)),
            (metadata, error) -> {
              if (error != null) {
                failure.compareAndSet(null, error);
              }
            });
      }
      // Acknowledged by the broker, not merely handed to the producer: the readers must find it all.
      producer.flush();
    }
    if (failure.get() != null) {
      throw new IllegalStateException("producing the input to " + topic + " failed", failure.get());
    }
    double seconds = (System.nanoTime() - start) / 1e9;
    Map<String, Object> result = new LinkedHashMap<>();
    result.put("seconds", Report.round(seconds, 3));
    result.put("eventsPerSecond", Math.round(count / seconds));
    result.put("lingerMs", 20);
    result.put("batchBytes", 256 * 1024);
    result.put("acks", "all");
    return result;
  }
}
