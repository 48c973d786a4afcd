package io.kfold.node;

import io.kfold.command.EntityWriter;
import io.kfold.command.EventBusApiVerticle;
import io.kfold.cluster.NodeClients;
import io.kfold.cluster.NodeDirectory;
import io.kfold.cluster.Ownership;
import io.kfold.config.NodeConfig;
import io.kfold.effects.EffectConfig;
import io.kfold.effects.EffectStats;
import io.kfold.effects.EffectVerticle;
import io.kfold.effects.PluggedSinks;
import io.kfold.entity.EffectSink;
import io.kfold.entity.EntityType;
import io.kfold.types.EntityTypes;
import io.kfold.fold.FoldProgress;
import io.kfold.fold.FoldVerticle;
import io.kfold.fold.FoldWatch;
import io.kfold.http.HttpApiVerticle;
import io.kfold.http.ServerCertificate;
import io.kfold.log.KafkaCheck;
import io.kfold.log.KafkaClients;
import io.kfold.log.Supervisor;
import io.kfold.log.Topics;
import io.kfold.plugin.Plugins;
import io.kfold.store.EntityStore;
import io.kfold.store.RocksEntityStore;
import io.kfold.entity.ViewDefinition;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.Vertx;
import io.vertx.kafka.client.producer.KafkaWriteStream;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.clients.admin.Admin;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.UnaryOperator;

/**
 * One running kfold node on a Kafka cluster: its topics, its store, its producer, and its verticles
 * deployed in order (fold, event bus, side-effect workers, HTTP). A failed step fails the start and undoes the steps
 * before it.
 */
public final class NodeRuntime {

  private static final Logger LOG = LoggerFactory.getLogger(NodeRuntime.class);

  private final Vertx vertx;
  private final EntityStore store;
  private final FoldProgress progress;
  private final KafkaWriteStream<String, byte[]> producer;
  /** Deployment ids, the last deployed first: they are undeployed in that order. */
  private final List<String> deployments = new CopyOnWriteArrayList<>();
  private final HttpApiVerticle http;
  private long sweeper = -1;
  /** Checks until the node is first ready, then logs the start-up line once; -1 when done. */
  private long readyWatch = -1;
  /** Set by stop: no sweep of idempotency keys starts after it. */
  private volatile boolean stopping;
  /** The sweep of idempotency keys running, or the last one: stop closes the store only after it. */
  private volatile Future<?> sweep = Future.succeededFuture();

  private final NodeDirectory directory;
  /** The plugin jars the node's types and views came from: closed when the node stops. */
  private final Plugins plugins;
  private final NodeMetrics metrics;

  private NodeRuntime(Vertx vertx, EntityStore store, KafkaWriteStream<String, byte[]> producer, FoldProgress progress,
                    HttpApiVerticle http, NodeDirectory directory, Plugins plugins, NodeMetrics metrics) {
    this.metrics = metrics;
    this.directory = directory;
    this.plugins = plugins;
    this.vertx = vertx;
    this.store = store;
    this.producer = producer;
    this.progress = progress;
    this.http = http;
  }

  /**
   * What kfold's own code and tests may change in a node beyond its configuration (the public
   * {@code KfoldNode.Options} offers the part that applications need).
   *
   * @param store                wraps the node's store, for example in a decorator that meters it
   * @param foldMaxPollInterval  the longest the fold's consumer may go between two polls before the
   *                             group gives its partitions to others ({@code max.poll.interval.ms})
   * @param views                views written in Java, kept besides the configuration's
   * @param types                entity types written in Java, served besides the configuration's
   * @param sinks                effect sinks written in Java, by the name a worker's {@code target: {name: ...}} gives
   */
  public record Options(UnaryOperator<EntityStore> store, Duration foldMaxPollInterval, List<ViewDefinition> views,
                        List<EntityType> types, Map<String, EffectSink> sinks, PrometheusMeterRegistry meterRegistry) {
    /**
     * The store as it is; Kafka's default poll interval, five minutes; no Java views, types or sinks; a
     * meter registry of the node's own.
     */
    public static final Options DEFAULTS = new Options(UnaryOperator.identity(), Duration.ofMinutes(5), List.of(), List.of(),
        Map.of(), null);

    public Options(UnaryOperator<EntityStore> store, Duration foldMaxPollInterval, List<ViewDefinition> views,
                   List<EntityType> types, Map<String, EffectSink> sinks) {
      this(store, foldMaxPollInterval, views, types, sinks, null);
    }

    /**
     * The node's meters go into {@code registry}, which {@code /metrics} then serves whole, and which
     * the application may serve itself too (kfold sets its rows that come and go anew every second): give
     * it the registry the node's Vert.x reports into ({@link NodeMetrics#vertxBuilder}) to serve that
     * instance's HTTP metrics too. One registry per node: two nodes' counts in one registry would be one
     * node's.
     */
    public Options withMeterRegistry(PrometheusMeterRegistry registry) {
      return new Options(store, foldMaxPollInterval, views, types, sinks, registry);
    }

    public Options withStore(UnaryOperator<EntityStore> decorator) {
      return new Options(decorator, foldMaxPollInterval, views, types, sinks, meterRegistry);
    }

    public Options withFoldMaxPollInterval(Duration interval) {
      return new Options(store, interval, views, types, sinks, meterRegistry);
    }

    public Options withView(ViewDefinition view) {
      return new Options(store, foldMaxPollInterval, plus(views, view), types, sinks, meterRegistry);
    }

    public Options withType(EntityType type) {
      return new Options(store, foldMaxPollInterval, views, plus(types, type), sinks, meterRegistry);
    }

    /**
     * Registers {@code sink} under {@code name}, for the workers whose target is {@code {name: <name>}}.
     * The sink stays the application's: kfold does not close it.
     */
    public Options withSink(String name, EffectSink sink) {
      if (name == null || name.isBlank() || sink == null) {
        throw new IllegalArgumentException("withSink needs a name and a sink");
      }
      if (sinks.containsKey(name)) {
        throw new IllegalArgumentException("a sink is registered twice under the name '" + name + "'");
      }
      Map<String, EffectSink> more = new HashMap<>(sinks);
      more.put(name, sink);
      return new Options(store, foldMaxPollInterval, views, types, Map.copyOf(more), meterRegistry);
    }

    private static <T> List<T> plus(List<T> list, T item) {
      List<T> more = new ArrayList<>(list);
      more.add(Objects.requireNonNull(item));
      return List.copyOf(more);
    }
  }

  /** Starts a node on the cluster named by {@code config.kafka().bootstrap()}. */
  public static Future<NodeRuntime> start(Vertx vertx, NodeConfig config) {
    return start(vertx, config, Options.DEFAULTS);
  }

  /** The plugin jars a node opened, and the types, views and effect sinks it serves, classes of those jars included. */
  private record Loaded(Plugins plugins, EntityTypes types, PluggedSinks sinks) {}

  /** The same, with {@code options}. */
  public static Future<NodeRuntime> start(Vertx vertx, NodeConfig config, Options options) {
    // Opening plugin jars and creating their classes blocks: called on an event loop, it runs on a worker;
    // called elsewhere, it runs at once, so that a bad plugin stops the start here, named.
    if (Context.isOnEventLoopThread()) {
      return vertx.executeBlocking(() -> load(config, options)).compose(loaded -> start(vertx, config, options, loaded));
    }
    return start(vertx, config, options, load(config, options));
  }

  private static Loaded load(NodeConfig config, Options options) {
    Plugins plugins = Plugins.open(config.plugins());
    try {
      EntityTypes types = EntityTypes.from(config, plugins, options.types(), options.views());
      return new Loaded(plugins, types, PluggedSinks.of(config.effects(), plugins, options.sinks()));
    } catch (RuntimeException e) {
      plugins.close();
      throw e;
    }
  }

  /**
   * Names the node after the id its data folder keeps, unless {@code kafka.groupInstanceId} names it:
   * its static group membership, its claims in the node directory and its transactions then outlive
   * a restart, and the other nodes can remove it from the groups by that name when it goes silent.
   */
  private static Future<NodeRuntime> start(Vertx vertx, NodeConfig config, Options options, Loaded loaded) {
    return vertx.executeBlocking(() -> storedNodeId(config.dataDir()))
        .compose(id -> start(vertx, config.kafka().groupInstanceId().isBlank()
            ? config.withGroupInstanceId(config.app() + "-" + id) : config, options, loaded, id))
        .onFailure(e -> loaded.sinks().close().onComplete(v -> loaded.plugins().close()));
  }

  private static Future<NodeRuntime> start(Vertx vertx, NodeConfig configured, Options options, Loaded loaded,
                                           String nodeId) {
    NodeMetrics metrics = new NodeMetrics(options.meterRegistry());
    // Every Kafka client made from this configuration reports into the node's registry.
    NodeConfig config = metrics.withKafkaMeters(configured);
    return start(vertx, config, options, loaded, nodeId, metrics).onFailure(e -> metrics.close());
  }

  private static Future<NodeRuntime> start(Vertx vertx, NodeConfig config, Options options, Loaded loaded,
                                           String nodeId, NodeMetrics metrics) {
    Plugins plugins = loaded.plugins();
    EntityTypes types = loaded.types();
    // The views' folded types have their topics and partitions like the user types.
    List<String> typeNames = types.folded().stream().map(EntityType::name).toList();
    Map<String, Integer> partitions = new java.util.concurrent.ConcurrentHashMap<>();
    java.util.concurrent.atomic.AtomicReference<String> transactionalId = new java.util.concurrent.atomic.AtomicReference<>();
    java.util.concurrent.atomic.AtomicReference<ServerCertificate> certificate = new java.util.concurrent.atomic.AtomicReference<>();
    return vertx.executeBlocking(() -> {
      // A missing or wrong TLS file stops the start before anything runs; the HTTP API serves what was read here.
      if (config.http().tls().enabled()) {
        certificate.set(ServerCertificate.read(vertx, config.http().tls()));
      }
      NodeClients.checkTrust(config.http().tls());
      try (Admin admin = KafkaCheck.admin(config.kafka(), config.app() + "-topics")) {
        // Before anything retries in silence: wrong credentials or an untrusted certificate fail here, said plainly.
        KafkaCheck.check(admin, config.kafka());
        partitions.putAll(Topics.ensure(admin, config, typeNames));
      }
      if (config.fold().transactions()) {
        transactionalId.set(config.app() + "-fold-" + nodeId);
      }
      return options.store().apply(new RocksEntityStore(config.dataDir().resolve("store"), config.store().memoryBytes()));
    }).compose(store -> vertx.executeBlocking(() -> KafkaWriteStream.create(vertx,
            KafkaClients.producer(config.kafka(), config.app() + "-writer"),
            new StringSerializer(), new ByteArraySerializer()))
        .compose(producer -> {
          FoldProgress progress = new FoldProgress();
          Supervisor supervisor = new Supervisor();
          FoldWatch watch = new FoldWatch(vertx, store);
          Ownership ownership = new Ownership(config, partitions, progress);
          EntityWriter writer = new EntityWriter(vertx, config, types, store, watch, producer, ownership);
          writer.measureWith(metrics.writeLatency());
          metrics.fold(progress, config, types.views());
          metrics.loops(supervisor);
          metrics.store(store);
          NodeDirectory directory = new NodeDirectory(config, config.kafka().groupInstanceId(), progress, supervisor,
              transactionalId.get());
          directory.keepViews(types.views());
          Map<String, EffectStats> effects = new LinkedHashMap<>();
          List<EffectVerticle> workers = new ArrayList<>();
          for (EffectConfig effect : config.effects()) {
            EffectVerticle worker = new EffectVerticle(config, effect, writer, ownership, directory, supervisor,
                loaded.sinks());
            workers.add(worker);
            effects.put(effect.name(), worker.stats());
          }
          metrics.effects(effects);
          metrics.refreshEverySecond(vertx);
          HttpApiVerticle http = new HttpApiVerticle(config, types, store, watch, progress, writer, effects, ownership,
              directory, supervisor, certificate.get(), metrics);
          NodeRuntime node = new NodeRuntime(vertx, store, producer, progress, http, directory, plugins, metrics);
          Future<Void> chain = node.deploy(new FoldVerticle(config, types, store, watch, progress,
                  () -> directory.standbys(config.fold().standbyReplicas()), supervisor, options.foldMaxPollInterval(),
                  transactionalId.get()))
              .compose(v -> node.deploy(new EventBusApiVerticle(config, types, store, watch, writer, ownership, directory)));
          for (EffectVerticle worker : workers) {
            chain = chain.compose(v -> node.deploy(worker));
          }
          node.forgetExpiredIdempotencyKeys(config);
          return chain.compose(v -> node.deploy(http))
              .compose(v -> vertx.executeBlocking(() -> {
                String advertised = config.http().advertisedUrl();
                String url = advertised.isBlank()
                    ? config.http().scheme() + "://" + config.http().host() + ":" + http.port() : advertised;
                directory.start(url);
                return url;
              }))
              .map(url -> {
                node.logWhenReady(supervisor, types, config, url);
                return node;
              })
              .recover(e -> node.stop().transform(v -> Future.failedFuture(e)));
        }, e -> {
          store.close();
          return Future.failedFuture(e);
        }));
  }

  /**
   * This node's id, kept in its data folder so that it stays the same across restarts: the fold's
   * transactions are named after it, and a node that restarts after a crash aborts, by starting
   * with the same transactional id, what it left open.
   */
  private static String storedNodeId(Path dataDir) throws IOException {
    Path file = dataDir.resolve("node-id");
    if (Files.exists(file)) {
      return Files.readString(file, StandardCharsets.UTF_8).trim();
    }
    String id = UUID.randomUUID().toString();
    Files.createDirectories(dataDir);
    Files.writeString(file, id, StandardCharsets.UTF_8);
    return id;
  }

  private Future<Void> deploy(VerticleBase verticle) {
    return vertx.deployVerticle(verticle).map(id -> {
      deployments.add(0, id);
      return null;
    });
  }

  public int httpPort() {
    return http.port();
  }

  /** The node directory: its claims, and the other nodes' as it reads them. */
  public NodeDirectory directory() {
    return directory;
  }

  public FoldProgress progress() {
    return progress;
  }

  public EntityStore store() {
    return store;
  }

  /** The registry {@code /metrics} serves: the node's own, or the one its options gave. */
  public PrometheusMeterRegistry meterRegistry() {
    return metrics.registry();
  }

  /** The version of kfold: its jar's Implementation-Version; "dev" when it runs from classes. */
  public static String version() {
    String version = NodeRuntime.class.getPackage().getImplementationVersion();
    return version == null ? "dev" : version;
  }

  /**
   * Logs one line when the node is first ready to serve (the fold up and every partition it was
   * given read to its end, as /ready says), for an operator who reads the log: what runs, and where.
   */
  private void logWhenReady(Supervisor supervisor, EntityTypes types, NodeConfig config, String url) {
    String line = "kfold " + version() + " ready at " + url + ": types "
        + String.join(", ", types.all().stream().map(EntityType::name).sorted().toList())
        + "; workers " + (config.effects().isEmpty() ? "none"
        : String.join(", ", config.effects().stream().map(EffectConfig::name).toList()))
        + "; node " + directory.node();
    readyWatch = vertx.setPeriodic(0, 100, id -> {
      Supervisor.Status fold = supervisor.loops().get("fold");
      if (stopping) {
        vertx.cancelTimer(id);
      } else if (fold != null && fold.state() == Supervisor.State.UP && progress.foldsAllAssigned()) {
        vertx.cancelTimer(id);
        LOG.info("{}", line);
      }
    });
  }

  /** Once an hour, the store forgets the idempotency keys older than the window. */
  private void forgetExpiredIdempotencyKeys(NodeConfig config) {
    long window = config.writes().idempotencyWindowMs();
    sweeper = vertx.setPeriodic(Math.min(window, 3_600_000), id -> {
      if (stopping) {
        return;
      }
      sweep = vertx.executeBlocking(() -> store.forgetIdempotencyKeys(System.currentTimeMillis() - window), false)
          .onSuccess(forgotten -> LOG.debug("forgot {} expired idempotency keys", forgotten))
          .onFailure(e -> LOG.warn("forgetting expired idempotency keys failed: {}", e.toString()));
    });
  }

  /** The routes of the HTTP API. */
  public List<String> httpRoutes() {
    return http.routes();
  }

  /**
   * Hands the fold's partitions over first: the fold finishes its poll, publishes what it folded and
   * leaves the group, so that the other nodes take its partitions over at once while this node's
   * API answers writes for them 503 (a caller's retry finds the new owner). Then withdraws the claim
   * and undeploys the other verticles in reverse order (HTTP first), and closes the producer and the store.
   */
  public Future<Void> stop() {
    stopping = true;
    vertx.cancelTimer(sweeper);
    vertx.cancelTimer(readyWatch);
    List<String> inReverse = new ArrayList<>(deployments);
    // The fold, deployed first, is the last of the list.
    Future<Void> chain = inReverse.isEmpty() ? Future.succeededFuture()
        : vertx.undeploy(inReverse.remove(inReverse.size() - 1));
    chain = chain.eventually(() -> vertx.executeBlocking(() -> {
      directory.close();
      return null;
    }));
    for (String deployment : inReverse) {
      chain = chain.eventually(() -> vertx.undeploy(deployment));
    }
    // If a verticle (the fold above all) did not stop, it may still use the store: leave it open
    // rather than pull native memory from under it.
    // A sweep that began a moment before stop still runs: the store is closed after it. (Its close
    // also waits for any call in progress, which covers a sweep that this read of the field missed.)
    return chain.eventually(producer::close).eventually(() -> sweep).compose(v -> vertx.executeBlocking(() -> {
      store.close();
      plugins.close();
      metrics.close();
      return null;
    })).mapEmpty();
  }
}
