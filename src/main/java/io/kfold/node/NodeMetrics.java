package io.kfold.node;

import io.kfold.command.EntityWriter;
import io.kfold.config.NodeConfig;
import io.kfold.effects.EffectStats;
import io.kfold.fold.FoldProgress;
import io.kfold.log.KafkaMeters;
import io.kfold.log.Supervisor;
import io.kfold.store.EntityStore;
import io.kfold.view.ViewType;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.MultiGauge;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.binder.jvm.ClassLoaderMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.core.instrument.binder.system.UptimeMetrics;
import io.micrometer.core.instrument.config.MeterFilter;
import io.micrometer.core.instrument.distribution.DistributionStatisticConfig;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Vertx;
import io.vertx.core.VertxBuilder;
import io.vertx.core.VertxOptions;
import io.vertx.micrometer.Label;
import io.vertx.micrometer.MicrometerMetricsFactory;
import io.vertx.micrometer.MicrometerMetricsOptions;
import io.vertx.micrometer.VertxPrometheusOptions;
import org.apache.kafka.common.TopicPartition;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;
import java.util.function.Supplier;
import java.util.function.ToDoubleFunction;

/**
 * A node's meters, in a Prometheus registry that {@code /metrics} scrapes: kfold's own ({@code kfold_*}),
 * the JVM's and the process's, and every Kafka client's (through {@link KafkaMeters}). Each node has its
 * own registry unless it is given one, so that two nodes in one JVM never add up their counts; a
 * registry that a Vert.x instance also reports into (see {@link #vertxBuilder}) adds that instance's
 * HTTP server metrics, per route template.
 */
public final class NodeMetrics {

  private static final Logger LOG = LoggerFactory.getLogger(NodeMetrics.class);

  /** Latency buckets of the HTTP, write and fold histograms, from half a millisecond to ten seconds. */
  private static final double[] SECONDS_BUCKETS = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
      1, 2.5, 5, 10};
  private static final Duration[] BUCKETS = buckets();
  private static final Path PROC_STATUS = Path.of("/proc/self/status");
  private static final long REFRESH_EVERY_MS = 1_000;

  private final PrometheusMeterRegistry registry;
  private final boolean own;
  /** kfold's meters in a registry it was given: removed from it when the node stops. */
  private final List<Meter> meters = new ArrayList<>();
  private final List<AutoCloseable> binders = new ArrayList<>();
  /** Gauges whose rows come and go (partitions, loops, views, index builds): set anew before each scrape. */
  private final List<Runnable> refreshes = new ArrayList<>();
  private final List<MultiGauge> multiGauges = new ArrayList<>();
  private final List<Object> held = new java.util.concurrent.CopyOnWriteArrayList<>();
  private final Map<String, Timer> writeTimers = new ConcurrentHashMap<>();
  private String kafkaRegistryId;
  private boolean closed;
  /** With a registry an application gave: the Vert.x and timer that set the changing rows anew. */
  private Vertx vertx;
  private long refreshTimer;

  /** Meters in {@code registry}, or in a registry of the node's own when it is null. */
  public NodeMetrics(PrometheusMeterRegistry registry) {
    this.own = registry == null;
    this.registry = own ? newRegistry() : registry;
    jvm();
  }

  /** A Prometheus registry with kfold's histogram buckets. */
  public static PrometheusMeterRegistry newRegistry() {
    return withHistograms(new PrometheusMeterRegistry(PrometheusConfig.DEFAULT));
  }

  private static Duration[] buckets() {
    Duration[] buckets = new Duration[SECONDS_BUCKETS.length];
    for (int i = 0; i < buckets.length; i++) {
      buckets[i] = Duration.ofNanos((long) (SECONDS_BUCKETS[i] * 1e9));
    }
    return buckets;
  }

  /**
   * Vert.x's HTTP response time as a histogram of a few fixed buckets, for Prometheus's histogram_quantile:
   * not the seventy of Micrometer's percentile histograms, so that each request records cheaply. (kfold's
   * own timers set their buckets themselves, so a registry an application gives has them too.)
   */
  private static PrometheusMeterRegistry withHistograms(PrometheusMeterRegistry registry) {
    double[] nanos = java.util.Arrays.stream(BUCKETS).mapToDouble(Duration::toNanos).toArray();
    // Of Vert.x's per-request HTTP server meters only the count and the latency by route: the byte sizes
    // and the active requests cost each GET CPU (measured with the http benchmark) and answer little.
    registry.config().meterFilter(MeterFilter.deny(id -> id.getName().startsWith("vertx.http.server.request.bytes")
        || id.getName().startsWith("vertx.http.server.response.bytes")
        || id.getName().equals("vertx.http.server.active.requests")));
    registry.config().meterFilter(new MeterFilter() {
      @Override
      public DistributionStatisticConfig configure(Meter.Id id, DistributionStatisticConfig config) {
        if (id.getType() == Meter.Type.TIMER && id.getName().equals("vertx.http.server.response.time")) {
          return DistributionStatisticConfig.builder().serviceLevelObjectives(nanos).build().merge(config);
        }
        return config;
      }
    });
    return registry;
  }

  /**
   * A Vert.x builder whose instance reports its HTTP servers' requests into {@code registry}, by route
   * template ({@code route="/v1/:type/:id"}), method and status code; never by path, which holds entity ids.
   */
  public static VertxBuilder vertxBuilder(VertxOptions options, PrometheusMeterRegistry registry) {
    MicrometerMetricsOptions metrics = new MicrometerMetricsOptions().setEnabled(true)
        .setPrometheusOptions(new VertxPrometheusOptions().setEnabled(true))
        // Pools by type and name: the worker pool, where kfold reads the store, apart from Vert.x's internal
        // one and from the connections to each other node (without these labels all add up in one series).
        .setLabels(EnumSet.of(Label.HTTP_ROUTE, Label.HTTP_METHOD, Label.HTTP_CODE, Label.POOL_TYPE, Label.POOL_NAME));
    return Vertx.builder().with(new VertxOptions(options).setMetricsOptions(metrics))
        .withMetrics(new MicrometerMetricsFactory(registry));
  }

  public PrometheusMeterRegistry registry() {
    return registry;
  }

  /** The configuration with the Kafka client settings that send every client's metrics here. */
  NodeConfig withKafkaMeters(NodeConfig config) {
    java.util.Map<String, String> settings = KafkaMeters.clientSettings(config.kafka().properties(), registry);
    kafkaRegistryId = settings.get(KafkaMeters.REGISTRY);
    return config.withKafkaProperties(settings);
  }

  private void jvm() {
    new JvmMemoryMetrics().bindTo(registry);
    JvmGcMetrics gc = new JvmGcMetrics();
    gc.bindTo(registry);
    binders.add(gc);
    new JvmThreadMetrics().bindTo(registry);
    new ClassLoaderMetrics().bindTo(registry);
    new ProcessorMetrics().bindTo(registry);
    new UptimeMetrics().bindTo(registry);
    if (Files.isReadable(PROC_STATUS)) {
      // Heap and direct memory are the JVM's; RocksDB's memtables and block cache are not, RSS counts all.
      gauge("kfold.process.resident.memory.bytes", "Resident memory of the process (VmRSS), RocksDB's included.",
          PROC_STATUS, NodeMetrics::residentBytes);
    }
  }

  private static double residentBytes(Path status) {
    try {
      for (String line : Files.readAllLines(status)) {
        if (line.startsWith("VmRSS:")) {
          return Double.parseDouble(line.replaceAll("[^0-9]", "")) * 1024;
        }
      }
    } catch (IOException | NumberFormatException e) {
      LOG.debug("cannot read the resident memory: {}", e.toString());
    }
    return Double.NaN;
  }

  /** The fold's counts, its lag and restores per partition, and its batches. */
  void fold(FoldProgress progress, NodeConfig config, java.util.Collection<ViewType> views) {
    counter("kfold.fold.events.applied", "Events applied to entity states.", progress.applied);
    counter("kfold.fold.events.duplicate", "Events skipped as duplicates.", progress.duplicates);
    counter("kfold.view.contributions.applied", "Contributions applied to the rows of views.",
        progress.contributionsApplied);
    counter("kfold.view.contributions.skipped", "Contributions skipped: their rows had them already.",
        progress.contributionsSkipped);
    counter("kfold.fold.events.conflict", "Events rejected by the version check.", progress.conflicts);
    counter("kfold.fold.records.dead.lettered", "Records sent to a dead-letter topic.", progress.deadLettered);
    counter("kfold.fold.batches", "Polls folded and written.", progress.batches);
    MultiGauge lag = multiGauge("kfold.fold.lag.records", "Records not yet folded, per assigned partition.");
    MultiGauge restore = multiGauge("kfold.fold.restore.remaining.records",
        "Records of a partition's changelog still to read while the node restores the partition.");
    MultiGauge viewLag = multiGauge("kfold.view.lag.records", "Contributions not yet folded into a view's rows,"
        + " over the view's partitions this node folds.");
    refreshes.add(() -> {
      rows(lag, progress.lag().keySet(), NodeMetrics::partitionTags, partition -> {
        Long records = progress.lag().get(partition);
        return records == null ? Double.NaN : records;
      });
      rows(restore, progress.restoring().keySet(), NodeMetrics::partitionTags, partition -> {
        long[] read = progress.restoring().get(partition);
        return read == null ? 0 : Math.max(0, read[1] - read[0]);
      });
      rows(viewLag, views, view -> Tags.of("view", ViewType.viewName(view.name())), view -> {
        String topic = config.eventsTopic(view.name());
        return progress.lag().entrySet().stream().filter(e -> e.getKey().topic().equals(topic))
            .mapToLong(Map.Entry::getValue).sum();
      });
    });
    DistributionSummary records = add(DistributionSummary.builder("kfold.fold.batch.records")
        .description("Records per folded batch (one poll).").serviceLevelObjectives(1, 10, 100, 500, 1000, 5000)
        .register(registry));
    Timer duration = add(Timer.builder("kfold.fold.batch.duration")
        .description("Time to fold a batch and write it to the store.").serviceLevelObjectives(BUCKETS)
        .register(registry));
    progress.onBatch((count, nanos) -> {
      records.record(count);
      duration.record(nanos, java.util.concurrent.TimeUnit.NANOSECONDS);
    });
  }

  private static Tags partitionTags(TopicPartition partition) {
    return Tags.of("topic", partition.topic(), "partition", Integer.toString(partition.partition()));
  }

  /** Each worker's counts, in flight, lag, breaker and parked entities. */
  void effects(Map<String, EffectStats> workers) {
    workers.forEach((worker, stats) -> {
      for (String metric : List.of("delivered", "retried", "deadLettered", "parked", "skipped", "lost",
          "outcomeUnknown")) {
        add(FunctionCounter.builder("kfold.effect." + snake(metric), stats, s -> s.toJson().path(metric).asDouble())
            .description("Changes the side-effect worker " + snake(metric).replace('.', ' ') + ".")
            .tag("worker", worker).register(registry));
      }
      for (String metric : List.of("inFlight", "lag")) {
        add(Gauge.builder("kfold.effect." + snake(metric), stats, s -> s.toJson().path(metric).asDouble())
            .description(metric.equals("lag") ? "Changes the worker has not yet read." : "Deliveries running now.")
            .tag("worker", worker).strongReference(true).register(registry));
      }
      add(Gauge.builder("kfold.effect.breaker.open", stats, s -> s.breakerOpen() ? 1 : 0)
          .description("1 while the worker's circuit breaker is open (no delivery tried), else 0.")
          .tag("worker", worker).strongReference(true).register(registry));
      add(Gauge.builder("kfold.effect.parked.entities", stats, EffectStats::parkedEntities)
          .description("Entities whose changes are parked now, waiting for a replay or a skip.")
          .tag("worker", worker).strongReference(true).register(registry));
    });
  }

  private static String snake(String camel) {
    return camel.replaceAll("([a-z])([A-Z])", "$1.$2").toLowerCase();
  }

  /** 1 per supervised loop that runs, 0 for one that is starting, retrying, down or stopped. */
  void loops(Supervisor supervisor) {
    MultiGauge up = multiGauge("kfold.loop.up", "1 while the supervised loop runs, else 0.");
    refreshes.add(() -> rows(up, supervisor.loops().keySet(), loop -> Tags.of("loop", loop), loop -> {
      Supervisor.Status status = supervisor.loops().get(loop);
      return status == null ? Double.NaN : status.state() == Supervisor.State.UP ? 1 : 0;
    }));
  }

  /** RocksDB's figures of the store, and what index builds have left to do. */
  void store(EntityStore store) {
    for (Map.Entry<String, String> figure : Map.of(
        "estimated.keys", "Keys in the store, as RocksDB estimates them.",
        "memtable.bytes", "Bytes of the store's memtables.",
        "block.cache.bytes", "Bytes the store's block cache holds.",
        "live.sst.bytes", "Bytes of the store's live SST files.",
        "pending.compaction.bytes", "Bytes RocksDB estimates compactions still have to rewrite.").entrySet()) {
      add(Gauge.builder("kfold.store." + figure.getKey(), store,
              s -> s.isOpen() ? s.usage().getOrDefault(figure.getKey(), Double.NaN) : Double.NaN)
          .description(figure.getValue()).tag("store", "entities").strongReference(true).register(registry));
    }
    MultiGauge builds = multiGauge("kfold.index.build.remaining", "Entities an index build still has to read"
        + " (0 once the index is ready).");
    // What is left of each build is read from the store once a refresh, not at each row's reading.
    Map<List<String>, Long> remaining = new ConcurrentHashMap<>();
    refreshes.add(() -> {
      if (store.isOpen()) {
        Map<List<String>, Long> now = new HashMap<>();
        store.indexBuilds().forEach(build -> now.put(List.of(build.type(), build.index()),
            build.ready() ? 0 : Math.max(0, build.entities() - build.built())));
        remaining.putAll(now);
        remaining.keySet().retainAll(now.keySet());
        rows(builds, now.keySet(), build -> Tags.of("type", build.get(0), "index", build.get(1)),
            build -> remaining.getOrDefault(build, 0L));
      }
    });
  }

  /** The HTTP API's own figures; {@code value} is read at each scrape. */
  public void httpCounter(String name, String description, Supplier<Number> value) {
    // A function counter holds its object weakly: the supplier, referenced by nothing else, must be kept here.
    held.add(value);
    add(FunctionCounter.builder(name, value, v -> v.get().doubleValue()).description(description).register(registry));
  }

  public void httpGauge(String name, String description, Supplier<Number> value) {
    add(Gauge.builder(name, value, v -> v.get().doubleValue()).description(description).strongReference(true)
        .register(registry));
  }

  /** Times writes from the request reaching the writer to the fold's verdict, by type and outcome. */
  EntityWriter.Latency writeLatency() {
    return (type, outcome, nanos) -> writeTimers.computeIfAbsent(type + '\n' + outcome, k -> add(
            Timer.builder("kfold.write.latency").description("Writes from the request to the fold's verdict.")
                .tags("type", type, "outcome", outcome).serviceLevelObjectives(BUCKETS).register(registry)))
        .record(nanos, java.util.concurrent.TimeUnit.NANOSECONDS);
  }

  /** The registry's text for Prometheus, gauges of changing rows set anew first. Reads the store: not on an event loop. */
  public String scrape() {
    refresh();
    return registry.scrape();
  }

  /**
   * An application that gave its own registry may serve it itself, never asking kfold's
   * {@code /metrics}: there the rows that come and go are set anew every second, on a worker thread
   * (they read the store). A registry of the node's own is only read through {@code /metrics}, which
   * sets them first.
   */
  synchronized void refreshEverySecond(Vertx vertx) {
    if (own) {
      return;
    }
    this.vertx = vertx;
    refreshTimer = vertx.setPeriodic(REFRESH_EVERY_MS, id -> vertx.executeBlocking(() -> {
      refresh();
      return null;
    }).onFailure(e -> LOG.debug("refreshing the meters failed: {}", e.toString())));
  }

  private synchronized void refresh() {
    if (!closed) {
      refreshes.forEach(Runnable::run);
    }
  }

  /** Stops reporting: the registry closes if it is the node's own, else kfold's meters leave it. */
  synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    if (vertx != null) {
      vertx.cancelTimer(refreshTimer);
    }
    if (kafkaRegistryId != null) {
      KafkaMeters.forget(kafkaRegistryId);
    }
    for (AutoCloseable binder : binders) {
      try {
        binder.close();
      } catch (Exception e) {
        LOG.debug("closing {}: {}", binder, e.toString());
      }
    }
    if (own) {
      registry.close();
    } else {
      meters.forEach(registry::remove);
      multiGauges.forEach(gauge -> gauge.register(List.of(), true));
    }
  }

  private void counter(String name, String description, java.util.concurrent.atomic.LongAdder adder) {
    add(FunctionCounter.builder(name, adder, java.util.concurrent.atomic.LongAdder::doubleValue)
        .description(description).register(registry));
  }

  private <T> void gauge(String name, String description, T state, ToDoubleFunction<T> value) {
    add(Gauge.builder(name, state, value).description(description).strongReference(true).register(registry));
  }

  /**
   * Sets the rows of {@code gauge}: one per key, whose value is read through {@code value} at each
   * scrape. Only rows that come or go touch the registry: registering every row anew at each refresh
   * churns the registry, which cost the GETs recording into it (measured with the http benchmark).
   */
  private static <K> void rows(MultiGauge gauge, Collection<K> keys, Function<K, Tags> tags, ToDoubleFunction<K> value) {
    gauge.register(keys.stream().map(key -> MultiGauge.Row.of(tags.apply(key), key, value)).toList(), false);
  }

  private MultiGauge multiGauge(String name, String description) {
    MultiGauge gauge = MultiGauge.builder(name).description(description).register(registry);
    multiGauges.add(gauge);
    return gauge;
  }

  private synchronized <M extends Meter> M add(M meter) {
    meters.add(meter);
    return meter;
  }
}
