package io.kfold.node;

import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.WebClient;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.List;
import java.util.Map;
import java.util.OptionalDouble;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code /metrics} of real nodes on the test broker: node A runs in a Vert.x that reports its HTTP
 * metrics into the registry A is given (as the kfold process does), node B, of another app, in a
 * plain Vert.x with a registry of its own (as an embedding application without one).
 */
@ExtendWith(TestBroker.class)
class MetricsTest {

  private static final String PLACE =
      "{\"type\":\"place\",\"payload\":{\"customerEmail\":\"a@b.c\",\"items\":[{\"sku\":\"x\",\"quantity\":1,\"price\":5}]}}";
  /** An entity id that must show in no series. */
  private static final String ORDER = "o-zq7x";

  private static Vertx vertxA;
  private static Vertx vertxB;
  private static NodeRuntime a;
  private static NodeRuntime b;
  private static WebClient client;

  @BeforeAll
  static void start() throws Exception {
    PrometheusMeterRegistry registry = NodeMetrics.newRegistry();
    vertxA = NodeMetrics.vertxBuilder(new VertxOptions(), registry).build();
    vertxB = Vertx.vertx();
    a = NodeRuntime.start(vertxA, TestNodes.config(TestNodes.newApp("metrics-a"), TestNodes.tempDir("metrics-a")),
        NodeRuntime.Options.DEFAULTS.withMeterRegistry(registry)).await(60, TimeUnit.SECONDS);
    b = NodeRuntime.start(vertxB, TestNodes.config(TestNodes.newApp("metrics-b"), TestNodes.tempDir("metrics-b")))
        .await(60, TimeUnit.SECONDS);
    TestNodes.awaitCaughtUp(a);
    TestNodes.awaitCaughtUp(b);
    client = WebClient.create(vertxA);
  }

  @AfterAll
  static void stop() throws Exception {
    for (NodeRuntime node : new NodeRuntime[] {a, b}) {
      if (node != null) {
        node.stop().await(60, TimeUnit.SECONDS);
      }
    }
    vertxA.close().await(30, TimeUnit.SECONDS);
    vertxB.close().await(30, TimeUnit.SECONDS);
  }

  @Test
  @DisplayName("requests by route template, writes, the fold, the store, Kafka clients, workers and loops are exported;"
      + " two nodes keep their counts apart")
  void exported() throws Exception {
    double writesBefore = value(scrape(a), "kfold_write_latency_seconds_count", "type=\"orders\"", "outcome=\"applied\"")
        .orElse(0);
    for (int i = 0; i < 3; i++) {
      assertThat(place(a, ORDER + (i == 0 ? "" : "-" + i)).status()).isEqualTo(200);
    }
    assertThat(place(b, "o-b1").status()).isEqualTo(200);
    assertThat(TestNodes.call(client, HttpMethod.GET, a.httpPort(), "/v1/orders/" + ORDER, null, Map.of()).status())
        .isEqualTo(200);

    // The GET is counted under its route's template, and no series names the entity.
    String text = awaitScrape(a, t -> value(t, "vertx_http_server_requests_total", "route=\"/v1/:type/:id\"",
        "method=\"GET\"", "code=\"200\"").isPresent());
    assertThat(value(text, "vertx_http_server_requests_total", "route=\"/v1/:type/:id\"", "method=\"GET\"",
        "code=\"200\"")).as("GETs counted by the route's template").isPresent();
    assertThat(value(text, "vertx_http_server_response_time_seconds_bucket", "route=\"/v1/:type/:id\"", "le=\"+Inf\""))
        .as("the latency histogram of the route").isPresent();
    assertThat(text.lines().filter(line -> line.contains(ORDER)).toList()).as("series naming the entity id").isEmpty();
    // The worker pool, where kfold reads the store, apart from Vert.x's internal one: both by name.
    assertThat(value(text, "vertx_pool_queue_pending", "pool_type=\"worker\"", "pool_name=\"vert.x-worker-thread\""))
        .as("the worker pool's queue").isPresent();
    assertThat(value(text, "vertx_pool_in_use", "pool_type=\"worker\"", "pool_name=\"vert.x-internal-blocking\""))
        .as("the internal pool's use").isPresent();

    // Each write is timed to its verdict.
    assertThat(value(text, "kfold_write_latency_seconds_count", "type=\"orders\"", "outcome=\"applied\"").orElse(0))
        .isEqualTo(writesBefore + 3);
    assertThat(value(text, "kfold_write_latency_seconds_bucket", "type=\"orders\"", "le=\"10.0\"")).isPresent();
    assertThat(value(text, "kfold_fold_batch_records_sum").orElse(0)).as("records folded in batches").isGreaterThanOrEqualTo(3);
    assertThat(value(text, "kfold_fold_batch_duration_seconds_count").orElse(0)).isGreaterThan(0);
    // (NaN, what a gauge without a value shows, would pass a plain greater-than: Double.compare sorts it last.)
    assertThat(value(text, "kfold_store_estimated_keys", "store=\"entities\"").orElse(0)).isFinite().isGreaterThan(0);
    assertThat(value(text, "kfold_process_resident_memory_bytes").orElse(0)).isFinite().isGreaterThan(0);
    assertThat(value(text, "jvm_memory_used_bytes")).isPresent();
    assertThat(value(text, "kafka_consumer_fetch_manager_records_consumed_total", "client_id=")).as("a consumer's metrics")
        .isPresent();
    assertThat(value(text, "kafka_producer_record_send_total", "client_id=")).as("a producer's metrics").isPresent();
    assertThat(value(text, "kfold_effect_delivered_total", "worker=\"shipment-request\"")).isPresent();
    assertThat(value(text, "kfold_effect_breaker_open", "worker=\"shipment-request\"")).hasValue(0);
    assertThat(value(text, "kfold_effect_parked_entities", "worker=\"shipment-request\"")).hasValue(0);
    assertThat(value(text, "kfold_loop_up", "loop=\"fold\"")).hasValue(1);
    assertThat(value(text, "kfold_fold_lag_records", "partition=\"0\"")).isPresent();
    assertThat(value(text, "kfold_index_build_remaining", "index=\"customer\"", "type=\"orders\"")).hasValue(0);
    assertThat(value(text, "kfold_view_lag_records", "view=\"customers\"")).isPresent();

    // Each node counts what it folded, not the other's too.
    String textB = scrape(b);
    assertThat(value(text, "kfold_fold_events_applied_total")).hasValue((double) a.progress().applied.sum());
    assertThat(value(textB, "kfold_fold_events_applied_total")).hasValue((double) b.progress().applied.sum());
    assertThat(a.progress().applied.sum()).isNotEqualTo(b.progress().applied.sum());
    assertThat(textB).as("a plain Vert.x has no HTTP metrics").doesNotContain("vertx_http_server_requests_total");
  }

  /**
   * An embedding application may serve the registry it gave kfold itself, never asking kfold's own
   * {@code /metrics}: the rows that come and go (lag per partition, loops, index builds) must be
   * current there too.
   */
  @Test
  @DisplayName("an application that scrapes the registry it gave, not /metrics, sees the fold's partitions and loops")
  void registryScrapedByTheApplication() throws Exception {
    PrometheusMeterRegistry registry = NodeMetrics.newRegistry();
    Vertx vertx = Vertx.vertx();
    try {
      NodeRuntime c = NodeRuntime.start(vertx, TestNodes.config(TestNodes.newApp("metrics-c"),
          TestNodes.tempDir("metrics-c")), NodeRuntime.Options.DEFAULTS.withMeterRegistry(registry))
          .await(60, TimeUnit.SECONDS);
      TestNodes.awaitCaughtUp(c);
      long deadline = System.currentTimeMillis() + 30_000;
      String text = registry.scrape();
      while (!(value(text, "kfold_loop_up", "loop=\"fold\"").isPresent()
          && value(text, "kfold_fold_lag_records", "partition=\"0\"").isPresent())) {
        assertThat(System.currentTimeMillis()).as("the fold's loop and partitions in the registry's own scrape: %s",
            text.lines().filter(line -> line.startsWith("kfold_")).toList()).isLessThan(deadline);
        Thread.sleep(100);
        text = registry.scrape();
      }
      assertThat(value(text, "kfold_loop_up", "loop=\"fold\"")).hasValue(1);
      c.stop().await(60, TimeUnit.SECONDS);
      assertThat(registry.scrape()).as("kfold's meters once the node stopped").doesNotContain("kfold_");
    } finally {
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  private static Reply place(NodeRuntime node, String order) throws Exception {
    return TestNodes.call(client, HttpMethod.POST, node.httpPort(), "/v1/orders/" + order + "/commands", PLACE, Map.of());
  }

  private static String scrape(NodeRuntime node) throws Exception {
    var response = client.get(node.httpPort(), "127.0.0.1", "/metrics").send().await(10, TimeUnit.SECONDS);
    assertThat(response.statusCode()).isEqualTo(200);
    return response.bodyAsString();
  }

  private static String awaitScrape(NodeRuntime node, Predicate<String> until) throws Exception {
    long deadline = System.currentTimeMillis() + 10_000;
    String text = scrape(node);
    while (!until.test(text) && System.currentTimeMillis() < deadline) {
      Thread.sleep(100);
      text = scrape(node);
    }
    return text;
  }

  /** The value of the first series of {@code name} whose labels contain every one of {@code labels}. */
  private static OptionalDouble value(String text, String name, String... labels) {
    return text.lines()
        .filter(line -> line.startsWith(name + " ") || line.startsWith(name + "{"))
        .filter(line -> List.of(labels).stream().allMatch(line::contains))
        .mapToDouble(line -> Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1)))
        .findFirst();
  }
}
