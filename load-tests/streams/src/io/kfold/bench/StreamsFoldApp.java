package io.kfold.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StoreQueryParameters;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TopologyConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;
import org.apache.kafka.streams.state.Stores;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import java.util.stream.Collectors;

/**
 * The Kafka Streams baseline of the fold benchmark: the textbook Streams way to fold an events topic
 * into states, {@code stream(topic).groupByKey().reduce(merge, persistent RocksDB store)}, where the
 * merge is kfold's for bare events (a JSON merge patch of flat objects).
 *
 * <p>It runs in a JVM of its own, started by the benchmark ({@code StreamsRun}), because kafka-streams
 * brings a rocksdbjni other than kfold's. It writes what it measured as a JSON file and exits 0, or
 * prints why it failed and exits 1.
 *
 * <p>The clock starts before the {@link KafkaStreams} instance is created, as kfold's starts before
 * its node, and stops when the reducer has seen every event. Reduce is not called for the first event
 * of a key (that event is the aggregate), so that is when it has been called {@code events - keys}
 * times. Then it waits until the application's committed offsets reach the end of the input (its
 * store flushed, its changelog written), and checks a sample of the states through an interactive
 * query: a fast but wrong fold does not count, here either.
 */
public final class StreamsFoldApp {

  private static final String STORE = "users-state";
  private static final long TIMEOUT_SECONDS = 900;
  /** As in kfold's run: looking more often takes CPU from the fold on a small machine. */
  private static final long POLL_MILLIS = 2;
  private static final ObjectMapper JSON = new ObjectMapper();

  /** Reduce calls so far; read by the main thread, written by the stream thread. */
  private static final LongAdder REDUCES = new LongAdder();
  private static final AtomicLong FIRST_REDUCE_NANOS = new AtomicLong();

  private StreamsFoldApp() {}

  public static void main(String[] args) {
    try {
      Map<String, String> options = options(args);
      Map<String, Object> result = run(options);
      Report.writeJson(Path.of(options.get("result")), result);
      System.exit(0);
    } catch (Throwable e) {
      e.printStackTrace();
      System.exit(1);
    }
  }

  private static Map<String, String> options(String[] args) {
    Map<String, String> options = new HashMap<>();
    for (int i = 0; i + 1 < args.length; i += 2) {
      if (!args[i].startsWith("--")) {
        throw new IllegalArgumentException("expected an option, got " + args[i]);
      }
      options.put(args[i].substring(2), args[i + 1]);
    }
    for (String required : List.of("bootstrap", "topic", "application-id", "state-dir", "guarantee", "events",
        "keys", "broker-pid", "result")) {
      if (!options.containsKey(required)) {
        throw new IllegalArgumentException("--" + required + " is missing");
      }
    }
    return options;
  }

  private static Map<String, Object> run(Map<String, String> options) throws Exception {
    String bootstrap = options.get("bootstrap");
    String topic = options.get("topic");
    String applicationId = options.get("application-id");
    long events = Long.parseLong(options.get("events"));
    int keys = Integer.parseInt(options.get("keys"));

    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, applicationId);
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(StreamsConfig.STATE_DIR_CONFIG, options.get("state-dir"));
    props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, options.get("guarantee"));
    // kfold writes its store and commits after every poll. With the at-least-once default of 30 s,
    // Streams would hold a whole run in its record cache and write nothing before the end; 100 ms is
    // also the exactly-once default, so both guarantees run with the same cadence.
    props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
    // One thread folds, as in kfold; this is also the default, stated for the record.
    props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
    // No global tables here, so this changes nothing but one of the warnings Streams 4.4 prints without
    // it (it prints another for a configuration it builds internally).
    props.put("processing.exception.handler.global.enabled", true);

    StreamsBuilder builder = new StreamsBuilder(new TopologyConfig(new StreamsConfig(props)));
    builder.stream(topic, Consumed.with(Serdes.ByteArray(), Serdes.ByteArray()))
        .groupByKey()
        .reduce(StreamsFoldApp::merge,
            Materialized.<byte[], byte[]>as(Stores.persistentKeyValueStore(STORE))
                .withKeySerde(Serdes.ByteArray())
                .withValueSerde(Serdes.ByteArray()));

    Map<String, Object> result = new LinkedHashMap<>();
    long target = events - keys;
    Meter meter = Meter.start(Long.parseLong(options.get("broker-pid")));
    long start = System.nanoTime();
    KafkaStreams streams = new KafkaStreams(builder.build(), props);
    try {
      streams.start();
      long deadline = start + TimeUnit.SECONDS.toNanos(TIMEOUT_SECONDS);
      while (REDUCES.sum() < target) {
        checkAlive(streams, deadline, "reduced " + REDUCES.sum() + " of " + target);
        Thread.sleep(POLL_MILLIS);
      }
      long all = System.nanoTime();
      Map<String, Object> resources = meter.sample();

      long committed;
      try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
        Map<TopicPartition, Long> ends = endOffsets(admin, topic);
        while (!reached(admin, applicationId, ends)) {
          checkAlive(streams, deadline, "offsets not committed up to " + ends);
          Thread.sleep(20);
        }
        committed = System.nanoTime();
      }

      double seconds = (all - start) / 1e9;
      long first = FIRST_REDUCE_NANOS.get();
      double steadySeconds = (all - first) / 1e9;
      result.put("events", events);
      result.put("applicationId", applicationId);
      result.put("processingGuarantee", options.get("guarantee"));
      result.put("commitIntervalMs", 100);
      result.put("streamThreads", 1);
      result.put("eventsPerSecond", Math.round(events / seconds));
      result.put("secondsToAllProcessed", Report.round(seconds, 3));
      result.put("secondsToFirstReduce", Report.round((first - start) / 1e9, 3));
      // Like kfold's steady rate, without the start. The input visits every key once before any key's
      // second event, so the events after the first reduce are about the reduced ones.
      result.put("eventsPerSecondFirstReduceToLast", Math.round(target / Math.max(steadySeconds, 1e-9)));
      result.put("secondsToCommitted", Report.round((committed - start) / 1e9, 3));
      result.put("reduces", REDUCES.sum());
      result.put("statesChecked", checkStates(streams, events, keys));
      result.put("resources", resources);
    } finally {
      streams.close(Duration.ofSeconds(60));
    }
    return result;
  }

  /**
   * kfold's merge of a bare event into its entity's state, for flat objects: each member of the
   * event replaces the state's, and a null removes it (RFC 7396). Parsed and written with Jackson,
   * as kfold does.
   */
  private static byte[] merge(byte[] aggregate, byte[] event) {
    if (FIRST_REDUCE_NANOS.get() == 0) {
      FIRST_REDUCE_NANOS.compareAndSet(0, System.nanoTime());
    }
    REDUCES.increment();
    try {
      ObjectNode state = (ObjectNode) JSON.readTree(aggregate);
      JsonNode patch = JSON.readTree(event);
      for (Map.Entry<String, JsonNode> member : patch.properties()) {
        if (member.getValue().isNull()) {
          state.remove(member.getKey());
        } else {
          state.set(member.getKey(), member.getValue());
        }
      }
      return JSON.writeValueAsBytes(state);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static void checkAlive(KafkaStreams streams, long deadline, String what) {
    KafkaStreams.State state = streams.state();
    if (state == KafkaStreams.State.ERROR || state == KafkaStreams.State.PENDING_ERROR
        || state == KafkaStreams.State.NOT_RUNNING || state == KafkaStreams.State.PENDING_SHUTDOWN) {
      throw new IllegalStateException("Kafka Streams is " + state + ": " + what);
    }
    if (System.nanoTime() > deadline) {
      throw new IllegalStateException("timed out after " + TIMEOUT_SECONDS + " s: " + what);
    }
  }

  private static Map<TopicPartition, Long> endOffsets(Admin admin, String topic) throws Exception {
    List<TopicPartition> partitions = admin.describeTopics(List.of(topic)).allTopicNames().get(30, TimeUnit.SECONDS)
        .get(topic).partitions().stream().map(p -> new TopicPartition(topic, p.partition())).toList();
    return admin.listOffsets(partitions.stream().collect(Collectors.toMap(p -> p, p -> OffsetSpec.latest())))
        .all().get(30, TimeUnit.SECONDS).entrySet().stream()
        .collect(Collectors.toMap(Map.Entry::getKey, e -> e.getValue().offset()));
  }

  /** Whether the group's committed offsets reached the end offsets (the plain call: see the facts on 4.x). */
  private static boolean reached(Admin admin, String group, Map<TopicPartition, Long> ends) throws Exception {
    Map<TopicPartition, OffsetAndMetadata> committed = admin.listConsumerGroupOffsets(group)
        .partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
    return ends.entrySet().stream().allMatch(end -> {
      OffsetAndMetadata offset = committed.get(end.getKey());
      return offset != null && offset.offset() >= end.getValue();
    });
  }

  /**
   * The benchmark's check of kfold, applied to the Streams store: a sample of entities must end with
   * the last {@code n} and all the fields the input rotates through.
   */
  private static int checkStates(KafkaStreams streams, long events, int keys) throws IOException {
    ReadOnlyKeyValueStore<byte[], byte[]> store = streams.store(
        StoreQueryParameters.fromNameAndType(STORE, QueryableStoreTypes.<byte[], byte[]>keyValueStore()));
    long perKey = events / keys;
    int expectedFields = (int) Math.min(perKey, Input.FIELDS) + 1;
    int step = Math.max(1, keys / 100);
    List<String> wrong = new ArrayList<>();
    int checked = 0;
    for (long entity = 0; entity < keys; entity += step) {
      String key = Input.key(entity);
      byte[] value = store.get(key.getBytes(StandardCharsets.UTF_8));
      checked++;
      if (value == null) {
        wrong.add(key + " has no state");
        continue;
      }
      JsonNode state = JSON.readTree(value);
      if (state.path("n").asLong(-1) != perKey - 1 || state.size() != expectedFields) {
        wrong.add(key + " is " + state);
      }
    }
    if (!wrong.isEmpty()) {
      throw new IllegalStateException(wrong.size() + " of " + checked + " sampled entities have a wrong state, e.g. "
          + wrong.get(0));
    }
    return checked;
  }
}
