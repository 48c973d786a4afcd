package io.kfold.bench;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.cfg.JsonNodeFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StoreQueryParameters;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TopologyConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.nio.file.Path;
import java.time.DateTimeException;
import java.time.Instant;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import java.util.stream.Collectors;

/**
 * The Kafka Streams baseline of the views benchmark: the {@code customers} view of kfold's default
 * configuration computed the textbook Streams way, from the same orders events topic:
 *
 * <pre>{@code
 * KTable<String, byte[]> orders = stream(topic).groupByKey().aggregate(newOrder, applyEvent, orders-state);
 * orders.filter(paid or shipped)
 *     .groupBy((id, order) -> KeyValue.pair(order.customerEmail, order))
 *     .aggregate(emptyRow, adder, subtractor, customers);
 * }</pre>
 *
 * <p>The first aggregate is kfold's fold of an order (the example's {@code apply}, with Jackson, the
 * state as JSON bytes); the second is the view: per customer the orders' count, the sum of their
 * totals, and the first and last {@code placedAt}. A subtractor cannot restore a minimum from the
 * minimum alone, so the row keeps its members' {@code placedAt} values (a sorted map of value to
 * count), as kfold's view must too: min and max stay exact under retraction in both.
 *
 * <p>It runs in a JVM of its own for the reason {@code StreamsFoldApp} does (kafka-streams brings a
 * rocksdbjni other than kfold's). The clock starts before the {@link KafkaStreams} is created and
 * stops when every input event has been folded into its order and the customers rows hold every
 * paid and every shipped order: orders only ever enter the view in this input (paid, then perhaps
 * shipped; only unpaid orders are cancelled), so the rows are complete once the adders minus the
 * subtractors counted all orders that end paid or shipped, and all that end shipped. Then it waits
 * for the committed offsets to reach the end of the input, and checks a sample of rows (an
 * interactive query) against the recomputation from the input. It writes its figures as JSON and
 * exits 0, or prints why it failed and exits 1.
 */
public final class StreamsViewApp {

  private static final String ORDERS_STORE = "orders-state";
  private static final String CUSTOMERS_STORE = "customers";
  private static final long TIMEOUT_SECONDS = 900;
  private static final long POLL_MILLIS = 2;
  private static final int CHECKED_ROWS = 200;
  /** Numbers as written, as kfold reads them: a total with cents stays exact. */
  private static final ObjectMapper JSON = JsonMapper.builder()
      .enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
      .disable(JsonNodeFeature.STRIP_TRAILING_BIGDECIMAL_ZEROES)
      .build();

  /** Written by the stream thread, read by the main thread. */
  private static final LongAdder APPLIED = new LongAdder();
  private static final LongAdder IN_VIEW = new LongAdder();
  private static final LongAdder SHIPPED_IN_VIEW = new LongAdder();
  private static final LongAdder ADDS = new LongAdder();
  private static final LongAdder SUBTRACTS = new LongAdder();
  private static final AtomicLong FIRST_APPLIED_NANOS = new AtomicLong();

  private StreamsViewApp() {}

  public static void main(String[] args) {
    try {
      Map<String, String> options = new HashMap<>();
      for (int i = 0; i + 1 < args.length; i += 2) {
        options.put(args[i].replaceFirst("^--", ""), args[i + 1]);
      }
      for (String required : List.of("bootstrap", "app", "orders", "application-id", "state-dir", "guarantee",
          "broker-pid", "result")) {
        if (!options.containsKey(required)) {
          throw new IllegalArgumentException("--" + required + " is missing");
        }
      }
      Map<String, Object> result = run(options);
      Report.writeJson(Path.of(options.get("result")), result);
      System.exit(0);
    } catch (Throwable e) {
      e.printStackTrace();
      System.exit(1);
    }
  }

  private static Map<String, Object> run(Map<String, String> options) throws Exception {
    String bootstrap = options.get("bootstrap");
    String applicationId = options.get("application-id");
    ViewInput input = new ViewInput(options.get("app"), Long.parseLong(options.get("orders")));
    long inView = input.expectedInView();
    long shipped = input.expectedShipped();

    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, applicationId);
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(StreamsConfig.STATE_DIR_CONFIG, options.get("state-dir"));
    props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, options.get("guarantee"));
    // As the fold benchmark's Streams app: kfold writes and commits after every poll.
    props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
    props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
    props.put("processing.exception.handler.global.enabled", true);

    StreamsBuilder builder = new StreamsBuilder(new TopologyConfig(new StreamsConfig(props)));
    KTable<String, byte[]> orders = builder.stream(input.topic, Consumed.with(Serdes.String(), Serdes.ByteArray()))
        .groupByKey()
        .aggregate(StreamsViewApp::newOrder, StreamsViewApp::apply,
            Materialized.<String, byte[], KeyValueStore<Bytes, byte[]>>as(ORDERS_STORE)
                .withKeySerde(Serdes.String()).withValueSerde(Serdes.ByteArray()));
    orders.filter((id, order) -> inView(order))
        .groupBy((id, order) -> KeyValue.pair(read(order).path("customerEmail").asText(), order),
            Grouped.with(Serdes.String(), Serdes.ByteArray()))
        .aggregate(StreamsViewApp::emptyRow, StreamsViewApp::add, StreamsViewApp::subtract,
            Materialized.<String, byte[], KeyValueStore<Bytes, byte[]>>as(CUSTOMERS_STORE)
                .withKeySerde(Serdes.String()).withValueSerde(Serdes.ByteArray()));

    Map<String, Object> result = new LinkedHashMap<>();
    long events = input.events();
    Meter meter = Meter.start(Long.parseLong(options.get("broker-pid")));
    long start = System.nanoTime();
    KafkaStreams streams = new KafkaStreams(builder.build(), props);
    try {
      streams.start();
      long deadline = start + TimeUnit.SECONDS.toNanos(TIMEOUT_SECONDS);
      while (APPLIED.sum() < events) {
        checkAlive(streams, deadline, "applied " + APPLIED.sum() + " of " + events + " events");
        Thread.sleep(POLL_MILLIS);
      }
      long folded = System.nanoTime();
      while (IN_VIEW.sum() != inView || SHIPPED_IN_VIEW.sum() != shipped) {
        checkAlive(streams, deadline, "the customers rows count " + IN_VIEW.sum() + " of " + inView
            + " orders, " + SHIPPED_IN_VIEW.sum() + " of " + shipped + " shipped");
        Thread.sleep(POLL_MILLIS);
      }
      long all = System.nanoTime();
      Map<String, Object> resources = meter.sample();

      long committed;
      try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
        Map<TopicPartition, Long> ends = endOffsets(admin, input.topic);
        while (!reached(admin, applicationId, ends)) {
          checkAlive(streams, deadline, "offsets not committed up to " + ends);
          Thread.sleep(20);
        }
        committed = System.nanoTime();
      }

      double seconds = (all - start) / 1e9;
      long first = FIRST_APPLIED_NANOS.get();
      result.put("orders", input.orders);
      result.put("events", events);
      result.put("applicationId", applicationId);
      result.put("processingGuarantee", options.get("guarantee"));
      result.put("commitIntervalMs", 100);
      result.put("streamThreads", 1);
      result.put("eventsPerSecond", Math.round(events / seconds));
      result.put("secondsToAllInRows", Report.round(seconds, 3));
      result.put("secondsToAllFolded", Report.round((folded - start) / 1e9, 3));
      result.put("eventsPerSecondOrdersFold", Math.round(events / ((folded - start) / 1e9)));
      result.put("secondsToFirstApplied", Report.round((first - start) / 1e9, 3));
      result.put("eventsPerSecondFirstToLast", Math.round(events / Math.max((all - first) / 1e9, 1e-9)));
      result.put("secondsToCommitted", Report.round((committed - start) / 1e9, 3));
      result.put("adderCalls", ADDS.sum());
      result.put("subtractorCalls", SUBTRACTS.sum());
      result.put("ordersInView", IN_VIEW.sum());
      result.put("rowsChecked", checkRows(streams, input));
      result.put("resources", resources);
    } finally {
      streams.close(Duration.ofSeconds(60));
    }
    return result;
  }

  private static byte[] newOrder() {
    return "{\"status\":\"new\"}".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
  }

  /** The example's {@code Orders.apply}, on the state as JSON bytes, as kfold stores it. */
  private static byte[] apply(String id, byte[] event, byte[] order) {
    if (FIRST_APPLIED_NANOS.get() == 0) {
      FIRST_APPLIED_NANOS.compareAndSet(0, System.nanoTime());
    }
    APPLIED.increment();
    ObjectNode state = (ObjectNode) read(order);
    JsonNode envelope = read(event);
    JsonNode payload = envelope.path("payload");
    switch (envelope.path("type").asText()) {
      case "OrderPlaced" -> state.put("status", "placed")
          .put("customerEmail", payload.path("customerEmail").asText())
          .<ObjectNode>set("items", payload.path("items"))
          .put("total", payload.path("total").decimalValue())
          .put("placedAt", placedAt(envelope.path("time").asText()));
      case "OrderPaid" -> state.put("status", "paid").put("paidAmount", payload.path("amount").decimalValue());
      case "OrderShipped" -> state.put("status", "shipped");
      case "OrderCancelled" -> state.put("status", "cancelled").put("cancelReason", payload.path("reason").asText());
      default -> {
        // not an order event: the state stays as it is, as in kfold
      }
    }
    return write(state);
  }

  /** As kfold's orders: the event's time at a fixed width. */
  private static String placedAt(String time) {
    try {
      return ViewInput.TIME.format(Instant.parse(time));
    } catch (DateTimeException e) {
      return time;
    }
  }

  /** The view's {@code where}: {@code {/status: [paid, shipped]}}. */
  private static boolean inView(byte[] order) {
    String status = read(order).path("status").asText();
    return status.equals("paid") || status.equals("shipped");
  }

  private static byte[] emptyRow() {
    return "{\"orders\":0,\"spent\":0,\"placedAt\":{}}".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
  }

  private static byte[] add(String customer, byte[] order, byte[] row) {
    ADDS.increment();
    return change(order, row, 1);
  }

  private static byte[] subtract(String customer, byte[] order, byte[] row) {
    SUBTRACTS.increment();
    return change(order, row, -1);
  }

  /**
   * Adds an order to a customer's row, or takes it out ({@code sign} -1): the count, the sum of the
   * totals, and the multiset of {@code placedAt} values that min and max are read from.
   */
  private static byte[] change(byte[] orderBytes, byte[] rowBytes, int sign) {
    JsonNode order = read(orderBytes);
    ObjectNode row = (ObjectNode) read(rowBytes);
    row.put("orders", row.path("orders").asLong() + sign);
    BigDecimal total = order.path("total").decimalValue();
    row.put("spent", sign > 0 ? row.path("spent").decimalValue().add(total) : row.path("spent").decimalValue()
        .subtract(total));
    ObjectNode members = (ObjectNode) row.path("placedAt");
    String at = order.path("placedAt").asText();
    long count = members.path(at).asLong(0) + sign;
    if (count > 0) {
      members.put(at, count);
    } else {
      members.remove(at);
    }
    IN_VIEW.add(sign);
    if (order.path("status").asText().equals("shipped")) {
      SHIPPED_IN_VIEW.add(sign);
    }
    return write(row);
  }

  private static JsonNode read(byte[] json) {
    try {
      return JSON.readTree(json);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static byte[] write(JsonNode node) {
    try {
      return JSON.writeValueAsBytes(node);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** A row as the view shows it: min and max read from the members. */
  private static ViewInput.Row row(byte[] bytes) {
    JsonNode row = read(bytes);
    TreeMap<String, Long> members = new TreeMap<>();
    for (Map.Entry<String, JsonNode> member : row.path("placedAt").properties()) {
      members.put(member.getKey(), member.getValue().asLong());
    }
    if (members.isEmpty()) {
      return null;
    }
    return new ViewInput.Row(row.path("orders").asLong(), row.path("spent").decimalValue(), members.firstKey(),
        members.lastKey());
  }

  /**
   * A fast wrong aggregate is worthless: a sample of customers' rows must equal the recomputation
   * from the input (a row that emptied counts as none).
   */
  private static int checkRows(KafkaStreams streams, ViewInput input) {
    ReadOnlyKeyValueStore<String, byte[]> store = streams.store(StoreQueryParameters.fromNameAndType(
        CUSTOMERS_STORE, QueryableStoreTypes.<String, byte[]>keyValueStore()));
    TreeMap<String, ViewInput.Row> expected = input.expectedCustomers();
    List<String> wrong = new ArrayList<>();
    String[] sample = input.sampleCustomers(CHECKED_ROWS);
    for (String customer : sample) {
      byte[] value = store.get(customer);
      ViewInput.Row actual = value == null ? null : row(value);
      ViewInput.Row want = expected.get(customer);
      if (want == null ? actual != null && actual.orders() != 0 : !want.sameAs(actual)) {
        wrong.add(customer + " is " + actual + ", expected " + want);
      }
    }
    if (!wrong.isEmpty()) {
      throw new IllegalStateException(wrong.size() + " of " + sample.length + " sampled customers rows are wrong,"
          + " e.g. " + wrong.get(0));
    }
    return sample.length;
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

  private static boolean reached(Admin admin, String group, Map<TopicPartition, Long> ends) throws Exception {
    Map<TopicPartition, OffsetAndMetadata> committed = admin.listConsumerGroupOffsets(group)
        .partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
    return ends.entrySet().stream().allMatch(end -> {
      OffsetAndMetadata offset = committed.get(end.getKey());
      return offset != null && offset.offset() >= end.getValue();
    });
  }
}
