package io.kfold;

import io.kfold.config.ConfigSource;
import io.kfold.config.NodeConfig;
import io.kfold.types.EntityTypes;
import io.kfold.log.KafkaCheck;
import io.kfold.plugin.Plugins;
import io.kfold.log.LocalBroker;
import io.kfold.node.NodeRuntime;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.kfold.node.NodeMetrics;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.PrintStream;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Reads the configuration, starts the local broker when no cluster is configured, starts the node,
 * and stops all of it, in reverse order, on exit. {@code --print-config [file]} prints the effective
 * configuration, secrets masked, and {@code --check-config [file]} checks it; {@code --version}
 * prints kfold's version; each then exits.
 */
public final class Main {

  static {
    // Before the first logger: in the runnable jar one Log4j2Plugins.dat (log4j-core's) takes the place of
    // the JSON template layout's, so its plugins (the layout, and the converters its builder needs) are
    // found by scanning its package instead. KFOLD_LOG_FORMAT=json needs them.
    org.apache.logging.log4j.core.config.plugins.util.PluginManager.addPackage("org.apache.logging.log4j.layout.template.json");
  }

  private static final Logger LOG = LoggerFactory.getLogger(Main.class);

  private Main() {}

  /** The exit status of a configuration that cannot be used. */
  static final int INVALID_CONFIGURATION = 2;

  public static void main(String[] args) throws Exception {
    String logFormat = System.getenv().getOrDefault("KFOLD_LOG_FORMAT", "text");
    if (!logFormat.equals("text") && !logFormat.equals("json")) {
      // The logging configuration names its appender after the variable: any other value leaves kfold silent.
      System.err.println("KFOLD_LOG_FORMAT must be text or json, was '" + logFormat + "'");
      System.exit(INVALID_CONFIGURATION);
      return;
    }
    if (args.length > 0) {
      System.exit(command(args, System.getenv(), System.out, System.err));
      return;
    }
    ConfigSource source;
    NodeConfig config;
    try {
      source = ConfigSource.read(System.getenv());
      config = NodeConfig.from(source);
    } catch (IllegalArgumentException e) {
      LOG.error("{}", e.getMessage());
      System.exit(INVALID_CONFIGURATION);
      return;
    }
    LOG.info("effective configuration (secrets masked):\n{}", source.masked());
    LocalBroker broker = null;
    if (config.kafka().embedded()) {
      LOG.info("no Kafka configured (KFOLD_KAFKA_BOOTSTRAP): starting a local broker");
      broker = LocalBroker.start(config.dataDir().resolve("kafka"), LocalBroker.defaultLibs(), config.kafka().localPort());
      config = config.withBootstrap(broker.bootstrap());
    }
    // One registry for the process: Vert.x's HTTP server metrics and the node's, served whole by /metrics.
    PrometheusMeterRegistry registry = NodeMetrics.newRegistry();
    Vertx vertx;
    if (config.eventBus().cluster().enabled()) {
      try {
        vertx = EventBusCluster.join(config, registry).await(120, TimeUnit.SECONDS);
      } catch (Exception e) {
        LOG.error("kfold failed to join the event bus cluster '{}': {}", config.eventBus().cluster().name(), e.toString(), e);
        if (broker != null) {
          broker.close();
        }
        System.exit(1);
        return;
      }
    } else {
      vertx = NodeMetrics.vertxBuilder(new VertxOptions(), registry).build();
    }
    NodeRuntime node;
    try {
      node = NodeRuntime.start(vertx, config, NodeRuntime.Options.DEFAULTS.withMeterRegistry(registry))
          .await(120, TimeUnit.SECONDS);
    } catch (Exception e) {
      KafkaCheck.Failed kafkaFailed = kafkaCheckFailure(e);
      if (kafkaFailed != null) {
        // A sentence that says what to fix; a stack trace would only bury it.
        LOG.error("kfold failed to start: {}", kafkaFailed.getMessage());
      } else {
        LOG.error("kfold failed to start: {}", e.toString(), e);
      }
      vertx.close().await(30, TimeUnit.SECONDS);
      if (broker != null) {
        broker.close();
      }
      System.exit(1);
      return;
    }
    LOG.info("kfold '{}' running on Kafka {}", config.app(), config.kafka().bootstrap());
    LocalBroker started = broker;
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      LOG.info("stopping kfold");
      try {
        node.stop().await(60, TimeUnit.SECONDS);
        vertx.close().await(30, TimeUnit.SECONDS);
      } catch (Exception e) {
        LOG.warn("stopping kfold: {}", e.toString());
      }
      if (started != null) {
        started.close();
      }
      LOG.info("kfold stopped");
      org.apache.logging.log4j.LogManager.shutdown();
    }, "kfold-shutdown"));
  }

  private static KafkaCheck.Failed kafkaCheckFailure(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof KafkaCheck.Failed failed) {
        return failed;
      }
    }
    return null;
  }

  /**
   * Runs {@code --print-config} or {@code --check-config}, with an optional file that stands for
   * {@code KFOLD_CONFIG}, and answers the exit status: 0 when the configuration can be used, else
   * {@link #INVALID_CONFIGURATION} with each problem on a line of {@code err}.
   */
  static int command(String[] args, Map<String, String> env, PrintStream out, PrintStream err) {
    List<String> known = List.of("--print-config", "--check-config", "--version");
    if (!known.contains(args[0]) || args.length > 2 || args[0].equals("--version") && args.length > 1) {
      err.println("usage: kfold [--print-config [file] | --check-config [file] | --version]; without arguments kfold starts");
      return 64;
    }
    if (args[0].equals("--version")) {
      out.println("kfold " + NodeRuntime.version());
      return 0;
    }
    Map<String, String> withFile = new HashMap<>(env);
    if (args.length == 2) {
      withFile.put("KFOLD_CONFIG", args[1]);
    }
    ConfigSource source;
    try {
      source = ConfigSource.read(withFile);
      NodeConfig config = NodeConfig.from(source);
      // The types and views too, their classes loaded as a start would: a bad plugin fails the check.
      try (Plugins plugins = Plugins.open(config.plugins())) {
        EntityTypes.from(config, plugins, List.of());
      }
    } catch (IllegalArgumentException e) {
      List<String> problems = e instanceof ConfigSource.Problems listed ? listed.problems() : List.of(e.getMessage());
      err.println("the configuration" + (withFile.containsKey("KFOLD_CONFIG") ? " " + withFile.get("KFOLD_CONFIG") : "")
          + " cannot be used:");
      problems.forEach(problem -> err.println("  - " + problem));
      return INVALID_CONFIGURATION;
    }
    if (args[0].equals("--print-config")) {
      out.print(source.masked());
    } else {
      out.println("the configuration" + (withFile.containsKey("KFOLD_CONFIG") ? " " + withFile.get("KFOLD_CONFIG") : "")
          + " is valid");
    }
    return 0;
  }
}
