package io.kfold;

import io.kfold.entity.EffectSink;
import io.kfold.entity.EntityType;
import io.kfold.entity.ViewDefinition;
import io.kfold.node.NodeRuntime;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Future;
import io.vertx.core.Vertx;

/**
 * A kfold node running in an application's own Vert.x: its fold, its event-bus addresses
 * ({@code kfold.<type>.command}, {@code .get}, {@code .changes}), its side-effect workers and its HTTP API.
 *
 * <pre>{@code
 * KfoldNode node = KfoldNode.start(vertx, KfoldConfig.fromYaml(yaml),
 *     KfoldNode.Options.DEFAULTS.withType(new Payments())).await();
 * ...
 * node.stop();  // the Vert.x instance stays the application's, open
 * }</pre>
 *
 * <p>Metrics: the node's {@code /metrics} serves its own registry (kfold's meters, the JVM's, the Kafka
 * clients'), one per node, so that nodes in one JVM keep their counts apart; an application that wants
 * its Vert.x's HTTP server metrics there too gives the node the registry that Vert.x reports into
 * ({@link Options#withMeterRegistry}).
 */
public final class KfoldNode {

  private final NodeRuntime runtime;

  private KfoldNode(NodeRuntime runtime) {
    this.runtime = runtime;
  }

  /** What an application gives a node in code, besides its configuration. Immutable: each {@code with} returns a copy. */
  public static final class Options {
    /** Nothing beyond the configuration. */
    public static final Options DEFAULTS = new Options(NodeRuntime.Options.DEFAULTS);

    private final NodeRuntime.Options runtime;

    private Options(NodeRuntime.Options runtime) {
      this.runtime = runtime;
    }

    /**
     * An entity type written in Java, served as if the configuration declared it: the configuration's
     * views and workers may name it. Its name must differ from every other type's.
     */
    public Options withType(EntityType type) {
      return new Options(runtime.withType(type));
    }

    /** A view written in Java, kept besides the configuration's. */
    public Options withView(ViewDefinition view) {
      return new Options(runtime.withView(view));
    }

    /**
     * An effect sink written in Java, for the workers whose target is {@code {name: <name>}}. The sink
     * stays the application's: kfold does not close it.
     */
    public Options withSink(String name, EffectSink sink) {
      return new Options(runtime.withSink(name, sink));
    }

    /**
     * The node's meters go into {@code registry} (Prometheus), which the node's {@code /metrics} then serves
     * whole, and which the application may serve itself too: kfold sets its rows that come and go (lag
     * per partition, loops, index builds) anew every second. Give it the registry the application's
     * Vert.x reports into, and {@code /metrics} shows that Vert.x's HTTP server requests too, by route
     * template:
     * <pre>{@code
     * PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
     * Vertx vertx = Vertx.builder()
     *     .with(new VertxOptions().setMetricsOptions(new MicrometerMetricsOptions().setEnabled(true)
     *         .setLabels(EnumSet.of(Label.HTTP_ROUTE, Label.HTTP_METHOD, Label.HTTP_CODE))))
     *     .withMetrics(new MicrometerMetricsFactory(registry)).build();
     * KfoldNode.start(vertx, config, KfoldNode.Options.DEFAULTS.withMeterRegistry(registry));
     * }</pre>
     * Without it the node keeps a registry of its own: kfold's, the JVM's and the Kafka clients' meters,
     * no Vert.x ones. One registry per node: two nodes' counts in one registry would be one node's.
     */
    public Options withMeterRegistry(PrometheusMeterRegistry registry) {
      return new Options(runtime.withMeterRegistry(registry));
    }
  }

  /** Starts a node on the Kafka cluster that {@code config} names. */
  public static Future<KfoldNode> start(Vertx vertx, KfoldConfig config) {
    return start(vertx, config, Options.DEFAULTS);
  }

  /**
   * The same, with {@code options}. The future fails, and nothing is left running, when the
   * configuration cannot be served: a type's name taken twice, Kafka out of reach, a port in use.
   * {@code vertx} stays the caller's: the node never closes it.
   */
  public static Future<KfoldNode> start(Vertx vertx, KfoldConfig config, Options options) {
    if (config.kafkaBootstrap().isBlank()) {
      return Future.failedFuture(new IllegalArgumentException("configuration: no 'kafka.bootstrap': name the Kafka"
          + " cluster, or start a local broker with LocalKafka and use config.withBootstrap(kafka.bootstrap())"));
    }
    if (config.node().eventBus().cluster().enabled() && !vertx.isClustered()) {
      return Future.failedFuture(new IllegalArgumentException("configuration: 'eventBus.cluster.enabled' is true,"
          + " but this Vert.x is not clustered: start kfold on the Vert.x that EventBusCluster.join(config) answers"));
    }
    try {
      return NodeRuntime.start(vertx, config.node(), options.runtime).map(KfoldNode::new);
    } catch (RuntimeException e) {
      return Future.failedFuture(e);  // a bad type or plugin: one way to fail, through the future
    }
  }

  /** The port the HTTP API listens on (the configured one, or the one chosen for port 0). */
  public int httpPort() {
    return runtime.httpPort();
  }

  /** The registry the node's meters are in, and {@code /metrics} serves: its own, or the one its options gave. */
  public PrometheusMeterRegistry meterRegistry() {
    return runtime.meterRegistry();
  }

  /** Undeploys the node's verticles and closes what it opened; {@code vertx} stays open. */
  public Future<Void> stop() {
    return runtime.stop();
  }
}
