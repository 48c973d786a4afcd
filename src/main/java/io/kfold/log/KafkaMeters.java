package io.kfold.log;

import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.metrics.KafkaMetric;
import org.apache.kafka.common.metrics.MetricsReporter;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Every Kafka client a node makes reports its metrics into the node's meter registry through this
 * reporter: the node's {@code kafka.properties} name it in {@code metric.reporters} (see
 * {@link #clientSettings}), so no client is left out, and Kafka closes it with its client, which
 * removes the client's meters.
 *
 * <p>Names follow Micrometer's {@code KafkaClientMetrics}: {@code kafka.<group without -metrics>.<name>},
 * so {@code kafka_consumer_fetch_manager_records_consumed_total}, {@code kafka_producer_record_send_total},
 * tagged {@code client_id}. Only a client's own metrics are kept, not those per topic, partition or
 * broker: they would multiply the series by the partitions (the fold's lag per partition is
 * {@code kfold_fold_lag_records}).
 */
public final class KafkaMeters implements MetricsReporter {

  /** The client setting that names the registry the client's metrics go to. */
  public static final String REGISTRY = "kfold.meter.registry";
  /** Kafka's own default reporter, kept beside this one unless the user's settings name others. */
  private static final String JMX_REPORTER = "org.apache.kafka.common.metrics.JmxReporter";
  private static final Map<String, MeterRegistry> REGISTRIES = new ConcurrentHashMap<>();

  private MeterRegistry registry;
  private String clientId = "";
  private final Map<MetricName, Meter> meters = new ConcurrentHashMap<>();

  /**
   * The client settings that send every client's metrics to {@code registry}, added to {@code properties}
   * (the user's reporters are kept); {@link #forget} with the answer's {@link #REGISTRY} once the node stopped.
   */
  public static Map<String, String> clientSettings(Map<String, String> properties, MeterRegistry registry) {
    String id = UUID.randomUUID().toString();
    REGISTRIES.put(id, registry);
    Map<String, String> settings = new HashMap<>(properties);
    String reporters = properties.getOrDefault("metric.reporters", JMX_REPORTER).trim();
    settings.put("metric.reporters", (reporters.isEmpty() ? "" : reporters + ",") + KafkaMeters.class.getName());
    settings.put(REGISTRY, id);
    return settings;
  }

  /** Clients made from now on with these settings report nowhere. */
  public static void forget(String id) {
    REGISTRIES.remove(id);
  }

  @Override
  public void configure(Map<String, ?> configs) {
    Object id = configs.get(REGISTRY);
    registry = id == null ? null : REGISTRIES.get(id.toString());
    Object client = configs.get("client.id");
    clientId = client == null ? "" : client.toString();
  }

  @Override
  public void init(List<KafkaMetric> metrics) {
    metrics.forEach(this::metricChange);
  }

  @Override
  public void metricChange(KafkaMetric metric) {
    MetricName name = metric.metricName();
    // The client's own metrics only; the app-info group holds strings (version, commit id).
    if (registry == null || !Set.of("client-id").equals(name.tags().keySet()) || name.group().equals("app-info")) {
      return;
    }
    String meterName = "kafka." + name.group().replaceAll("-metrics$", "").replace('-', '.') + "."
        + name.name().replace('-', '.');
    String client = name.tags().getOrDefault("client-id", clientId);
    Meter meter = name.name().endsWith("-total")
        ? FunctionCounter.builder(meterName, metric, KafkaMeters::value).tag("client.id", client)
            .description(name.description()).register(registry)
        : Gauge.builder(meterName, metric, KafkaMeters::value).tag("client.id", client)
            .description(name.description()).register(registry);
    Meter before = meters.put(name, meter);
    if (before != null && before != meter) {
      registry.remove(before);
    }
  }

  @Override
  public void metricRemoval(KafkaMetric metric) {
    Meter meter = meters.remove(metric.metricName());
    if (meter != null && registry != null) {
      registry.remove(meter);
    }
  }

  @Override
  public void close() {
    if (registry != null) {
      meters.values().forEach(registry::remove);
    }
    meters.clear();
  }

  private static double value(KafkaMetric metric) {
    return metric.metricValue() instanceof Number number ? number.doubleValue() : Double.NaN;
  }
}
