package io.kfold.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.kfold.bench.LoadGenerator.Mode;
import io.kfold.bench.LoadGenerator.Workload;
import io.kfold.config.NodeConfig;
import io.kfold.fold.FoldProgress;
import io.kfold.node.NodeMetrics;
import io.kfold.node.NodeRuntime;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import jdk.jfr.Configuration;
import jdk.jfr.Recording;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * kfold's HTTP API under load, next to a bare Vert.x server hit by the same load generator in the
 * same run: reads of entity states ({@code GET /v1/users/{id}}), appends of events
 * ({@code POST /v1/users/{id}/events}) and commands ({@code POST /v1/orders/{id}/commands}), each at
 * several concurrencies (connections).
 *
 * <p>One broker and one node for the whole run; the node (and the bare server, in a Vert.x instance
 * of its own) run in this JVM, the load in another ({@link LoadGenerator}), one per phase. Before
 * the phases, {@code entities} users get {@code eventsPerEntity} events each straight on their
 * events topic, and the node folds them: those are the states the reads fetch and the appends
 * extend. The bare server answers every request with the bytes of kfold's answer to a read of
 * {@code user-0}.
 *
 * <p>Per workload and concurrency: a closed loop (each connection sends its next request when the
 * last is answered), whose rate is the maximum at that concurrency, then a fixed rate of half that
 * maximum, with latencies from each request's due time (no coordinated omission). For the reads the
 * bare server's closed loop at the same concurrency runs just before kfold's, so that the ratio of
 * the two comes from neighbouring seconds. After each write phase the fold must have applied
 * exactly one event per 200 answer; after every kfold phase no answer may be other than 200.
 *
 * <p>Usage: {@code load-tests/run.sh http [--concurrencies 8,32,128] [--workloads get,events,commands]
 * [--entities N] [--events-per-entity N] [--per-client N] [--warmup S] [--duration S] [--rate-warmup S]
 * [--rate-duration S] [--warmup-phase S] [--if-match-duration S] [--jfr] [--access-log]}; see load-tests/README.md.
 */
public final class HttpBenchmark {

  private static final String APP = "http-bench";
  private static final String GENERATOR_HEAP = "-Xmx512m";
  /** Orders (or appended entities) of a write phase, shared out among its connections. */
  private static final int WRITE_ENTITIES = 1024;
  private static final int MIN_PER_CLIENT = 8;
  /** Between phases: the broker flushes, this JVM collects; one phase's leftovers are not billed to the next. */
  private static final long SETTLE_MILLIS = 1_000;
  private static final long IDLE_MILLIS = 3_000;
  private static final long STARTED = System.nanoTime();
  /** This benchmark's workloads; the others are the query benchmark's. */
  private static final List<Workload> HTTP_WORKLOADS = List.of(Workload.GET, Workload.EVENTS, Workload.COMMANDS);
  /** The concurrency of the latency goal's p99 targets (issue 17, goal 5). */
  private static final int TARGET_CONNECTIONS = 32;

  record Options(List<Integer> concurrencies, List<Workload> workloads, int entities, int eventsPerEntity,
                 int perClient, double warmupSeconds, double durationSeconds, double rateWarmupSeconds,
                 double rateDurationSeconds, double warmupPhaseSeconds, double ifMatchDurationSeconds,
                 boolean jfr, Path jfrDir, boolean accessLog) {

    static Options parse(Bench.Args args) {
      List<Integer> concurrencies = List.of(8, 32, 128);
      List<Workload> workloads = HTTP_WORKLOADS;
      int entities = 10_000;
      int eventsPerEntity = 8;
      int perClient = 0;
      double warmup = 2;
      double duration = 5;
      double rateWarmup = 2;
      double rateDuration = 5;
      // Long enough for the JIT: with 3 s, the first write phases measured compilation too (1.7-3.5x the
      // CPU per request of a warm node).
      double warmupPhase = 15;
      double ifMatchDuration = 0;
      boolean jfr = false;
      boolean accessLog = false;
      Path jfrDir = Path.of(".");
      while (args.next()) {
        switch (args.option()) {
          // --clients and --orders-per-client: the names of the commands-only benchmark this one grew from.
          case "--concurrencies", "--clients" -> concurrencies = Arrays.stream(args.value().split(","))
              .map(String::trim).map(Integer::parseInt).toList();
          case "--workloads" -> workloads = Arrays.stream(args.value().split(","))
              .map(w -> Workload.valueOf(w.trim().toUpperCase())).toList();
          case "--entities" -> entities = Integer.parseInt(args.value());
          case "--events-per-entity" -> eventsPerEntity = Integer.parseInt(args.value());
          case "--per-client", "--orders-per-client" -> perClient = Integer.parseInt(args.value());
          case "--warmup" -> warmup = Double.parseDouble(args.value());
          case "--duration" -> duration = Double.parseDouble(args.value());
          case "--rate-warmup" -> rateWarmup = Double.parseDouble(args.value());
          case "--rate-duration" -> rateDuration = Double.parseDouble(args.value());
          case "--warmup-phase", "--kfold-warmup" -> warmupPhase = Double.parseDouble(args.value());
          case "--if-match-duration" -> ifMatchDuration = Double.parseDouble(args.value());
          case "--jfr" -> jfr = true;
          case "--access-log" -> accessLog = true;
          case "--jfr-dir" -> jfrDir = Path.of(args.value());
          default -> args.common();
        }
      }
      if (!HTTP_WORKLOADS.containsAll(workloads)) {
        throw new IllegalArgumentException("--workloads takes some of get, events, commands");
      }
      if (concurrencies.isEmpty() || concurrencies.stream().anyMatch(c -> c < 1 || c > 1000) || workloads.isEmpty()
          || entities < 1 || eventsPerEntity < 1 || perClient < 0 || perClient > 1000 || duration <= 0
          || rateDuration < 0) {
        throw new IllegalArgumentException("--concurrencies 1 to 1000 each, --entities, --events-per-entity and"
            + " --duration positive, --per-client 0 (automatic) to 1000, --rate-duration 0 or more");
      }
      Options options = new Options(concurrencies, workloads, entities, eventsPerEntity, perClient, warmup, duration,
          rateWarmup, rateDuration, warmupPhase, ifMatchDuration, jfr, jfrDir, accessLog);
      for (int clients : concurrencies) {
        if ((long) options.perClient(clients) * clients > entities) {
          throw new IllegalArgumentException("the appends of " + clients + " connections need " + clients + " x "
              + options.perClient(clients) + " entities of their own, more than --entities " + entities);
        }
      }
      return options;
    }

    /** Entities each connection writes to: the given number, else {@value #WRITE_ENTITIES} shared out. */
    int perClient(int clients) {
      return perClient > 0 ? perClient : Math.max(MIN_PER_CLIENT, WRITE_ENTITIES / clients);
    }
  }

  /**
   * One run of the load generator against one server. Phases with the same {@code prefix} write to the
   * same entities ({@code setup} false: the orders were placed by the earlier one).
   */
  private record Phase(String name, String label, String target, Workload workload, Mode mode, int clients,
                       int perClient, String prefix, boolean setup, double rate, double warmupSeconds,
                       double durationSeconds) {}

  public static void main(String[] args) throws Exception {
    Bench.main(args, "http", Options::parse, HttpBenchmark::run, HttpBenchmark::table);
  }

  private static void run(Options options, Bench.Run run) throws Exception {
    Map<String, Object> settings = new LinkedHashMap<>();
    settings.put("concurrencies", options.concurrencies());
    settings.put("workloads", options.workloads().stream().map(Workload::option).toList());
    settings.put("entities", options.entities());
    settings.put("eventsPerEntity", options.eventsPerEntity());
    settings.put("writeEntitiesPerClient", options.concurrencies().stream()
        .collect(LinkedHashMap::new, (m, c) -> m.put(c.toString(), options.perClient(c)), Map::putAll));
    settings.put("warmupSeconds", options.warmupSeconds());
    settings.put("durationSeconds", options.durationSeconds());
    settings.put("rateWarmupSeconds", options.rateWarmupSeconds());
    settings.put("rateDurationSeconds", options.rateDurationSeconds());
    settings.put("warmupPhaseSeconds", options.warmupPhaseSeconds());
    settings.put("ifMatchDurationSeconds", options.ifMatchDurationSeconds());
    settings.put("partitions", Input.PARTITIONS);
    settings.put("generatorJvm", GENERATOR_HEAP + ", one for the whole run");
    settings.put("configuration", "the default one built into kfold (with its shipment-request worker)");
    settings.put("accessLog", options.accessLog());
    run.json.put("settings", settings);
    run.announce(String.format("%s at %s connections; %,d entities of %d events to read",
        options.workloads().stream().map(Workload::option).toList(), options.concurrencies(), options.entities(),
        options.eventsPerEntity()));

    run.withBroker(broker -> {
      // The states to read: events from an outside producer, folded by the node as it starts.
      Input input = new Input(APP, (long) options.entities() * options.eventsPerEntity(), options.entities());
      try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap()))) {
        input.createTopic(admin);
      }
      run.json.put("fill", input.produce(broker.bootstrap()));
      List<Map<String, Object>> phases = new ArrayList<>();
      run.json.put("phases", phases);
      Map<String, String> env = Bench.nodeEnv(APP, run.workDir.resolve("kfold"), broker.bootstrap());
      if (options.accessLog()) {
        env.put("KFOLD_HTTP_ACCESS_LOG", "true");
      }
      // The node as the kfold process runs it: its Vert.x reports HTTP metrics into the node's registry.
      PrometheusMeterRegistry registry = NodeMetrics.newRegistry();
      Vertx nodeVertx = NodeMetrics.vertxBuilder(new VertxOptions(), registry).build();
      BareServer bare = null;
      try {
        NodeRuntime node = NodeRuntime.start(nodeVertx, NodeConfig.load(env),
            NodeRuntime.Options.DEFAULTS.withMeterRegistry(registry)).await(120, TimeUnit.SECONDS);
        try {
          awaitApplied(node.progress(), input.events, 120);
          byte[] answer = read(node.httpPort(), "/v1/" + Input.TYPE + "/" + Input.key(0));
          run.json.put("getAnswerBytes", answer.length);
          bare = BareServer.launch(answer);
          System.out.printf("kfold node on port %d folded %,d events; bare server on port %d answers %d bytes%n",
              node.httpPort(), input.events, bare.port(), answer.length);
          // What the server side (node and bare server) and the broker use without any request: the
          // fold's and the workers' polls. The CPU per request below is net of it.
          Bench.settle();
          Meter idle = Meter.start(broker.pid());
          Thread.sleep(IDLE_MILLIS);
          Map<String, Object> idleResources = idle.sample();
          run.json.put("idleServerSide", idleResources);
          double idleCores = ((Number) idleResources.get("benchJvmCores")).doubleValue();
          double idleBrokerCores = ((Number) idleResources.get("brokerCores")).doubleValue();
          System.out.printf("idle: server side %.2f cores, broker %.2f cores%n", idleCores, idleBrokerCores);
          try (Generator generator = Generator.start()) {
            Runner runner = new Runner(options, generator, run.workDir, broker.pid(), node, bare.port(), idleCores,
                idleBrokerCores, run.problems);
            runPhases(options, runner, phases, run.json, node.httpPort());
          }
          run.json.put("summary", summary(options, phases));
          run.json.put("effectWorkers", Bench.get(node.httpPort(), "/v1/_effects"));
          run.json.put("foldAtEnd", Map.of("applied", node.progress().applied.sum(),
              "conflicts", node.progress().conflicts.sum(), "duplicates", node.progress().duplicates.sum(),
              "deadLettered", node.progress().deadLettered.sum()));
        } finally {
          node.stop().await(120, TimeUnit.SECONDS);
        }
      } finally {
        if (bare != null) {
          bare.close();
        }
        nodeVertx.close().await(60, TimeUnit.SECONDS);
      }
    });
  }

  /** Per workload and concurrency: its closed loop, then half of that rate; the reads after the bare server. */
  private static void runPhases(Options options, Runner runner, List<Map<String, Object>> phases,
                                Map<String, Object> json, int nodePort) throws Exception {
    if (options.warmupPhaseSeconds() > 0) {
      // Not in the table: a closed loop on the bare server and one per workload on kfold, so that the
      // measured phases meet warm servers (and a warm generator).
      List<Map<String, Object>> warmups = new ArrayList<>();
      json.put("warmupPhases", warmups);
      int clients = options.concurrencies().get(0);
      warmups.add(runner.run(new Phase("warmup-bare", "bare server warm-up", "bare", Workload.GET, Mode.CLOSED,
          clients, options.perClient(clients), "warmup-bare", true, 0, 0, options.warmupPhaseSeconds())));
      for (Workload workload : options.workloads()) {
        warmups.add(runner.run(new Phase("warmup-" + workload.option(), "kfold warm-up, " + workload.option(), "kfold",
            workload, Mode.CLOSED, clients, options.perClient(clients), "warmup-" + workload.option(), true, 0, 0,
            options.warmupPhaseSeconds())));
      }
    }
    // /ready polled as an orchestrator's probe would, during the measured phases: it should stay READY.
    ReadyWatch ready = ReadyWatch.start(nodePort);
    try {
      measuredPhases(options, runner, phases);
    } finally {
      json.put("ready", ready.stop());
    }
  }

  private static void measuredPhases(Options options, Runner runner, List<Map<String, Object>> phases) throws Exception {
    for (Workload workload : options.workloads()) {
      String what = switch (workload) {
        case GET -> "GET state";
        case EVENTS -> "append events";
        case COMMANDS -> "commands";
        default -> throw new IllegalArgumentException("not a workload of this benchmark: " + workload);
      };
      for (int clients : options.concurrencies()) {
        int perClient = options.perClient(clients);
        String name = workload.option() + "-c" + clients;
        if (workload == Workload.GET) {
          phases.add(runner.run(new Phase("bare-c" + clients, "bare server, " + clients + " connections", "bare",
              workload, Mode.CLOSED, clients, perClient, "bare-c" + clients, true, 0, options.warmupSeconds(),
              options.durationSeconds())));
        }
        Map<String, Object> closed = runner.run(new Phase(name, "kfold " + what + ", " + clients + " connections",
            "kfold", workload, Mode.CLOSED, clients, perClient, name, true, 0, options.warmupSeconds(),
            options.durationSeconds()));
        phases.add(closed);
        double halfRate = Math.max(1, perSecond(closed) / 2.0);
        if (options.rateDurationSeconds() > 0) {
          phases.add(runner.run(new Phase(name + "-half", String.format("kfold %s, %d connections, at %,.0f/s", what,
              clients, halfRate), "kfold", workload, Mode.RATE, clients, perClient, name, false, halfRate,
              options.rateWarmupSeconds(), options.rateDurationSeconds())));
        }
      }
    }
    if (options.ifMatchDurationSeconds() > 0 && options.workloads().contains(Workload.COMMANDS)) {
      int clients = options.concurrencies().get(0);
      String name = "commands-c" + clients;
      phases.add(runner.run(new Phase(name + "-if-match", "kfold GET + If-Match command, " + clients
          + " connections", "kfold", Workload.COMMANDS, Mode.IF_MATCH, clients, options.perClient(clients), name,
          false, 0, options.rateWarmupSeconds(), options.ifMatchDurationSeconds())));
    }
  }

  /**
   * One row per workload and concurrency (the bare server's in the reads' rows), the ratio of kfold's
   * reads to the bare server's, and the two targets: reads at least 0.6 of the bare server's rate, and
   * a command's p99 under 20 ms at half the highest command rate.
   */
  private static Map<String, Object> summary(Options options, List<Map<String, Object>> phases) {
    Map<String, Object> summary = new LinkedHashMap<>();
    List<Map<String, Object>> rows = new ArrayList<>();
    summary.put("rows", rows);
    for (Workload workload : options.workloads()) {
      for (int clients : options.concurrencies()) {
        String name = workload.option() + "-c" + clients;
        Map<String, Object> closed = phase(phases, name);
        if (closed == null) {
          continue;
        }
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("workload", workload.option());
        row.put("connections", clients);
        row.put("maxPerSecond", perSecond(closed));
        row.put("latencyMs", requests(closed).get("latencyMs"));
        row.put("benchJvmCpuMicrosPerRequest", closed.get("benchJvmCpuMicrosPerRequest"));
        Map<String, Object> half = phase(phases, name + "-half");
        if (half != null) {
          row.put("halfRate", half.get("targetRate"));
          row.put("halfRateLatencyMs", requests(half).get("latencyMs"));
        }
        Map<String, Object> bare = phase(phases, "bare-c" + clients);
        if (bare != null && workload == Workload.GET) {
          row.put("barePerSecond", perSecond(bare));
          row.put("bareLatencyMs", requests(bare).get("latencyMs"));
          row.put("bareBenchJvmCpuMicrosPerRequest", bare.get("benchJvmCpuMicrosPerRequest"));
          row.put("kfoldToBare", ratio(perSecond(closed), perSecond(bare)));
        }
        rows.add(row);
      }
    }
    long bareMax = best(rows, "get", "barePerSecond");
    long getMax = best(rows, "get", "maxPerSecond");
    if (bareMax > 0 && getMax > 0) {
      Map<String, Object> get = new LinkedHashMap<>();
      get.put("bareMaxPerSecond", bareMax);
      get.put("kfoldMaxPerSecond", getMax);
      get.put("kfoldToBare", ratio(getMax, bareMax));
      get.put("target", 0.6);
      get.put("met", getMax >= 0.6 * bareMax);
      summary.put("getToBare", get);
    }
    summary.put("p99Targets", p99Targets(rows));
    return summary;
  }

  /**
   * The p99 targets of the latency goal, at half the closed-loop maximum rate at {@value #TARGET_CONNECTIONS}
   * connections: commands under 20 ms, GETs of a state under 5 ms. A workload not measured there has
   * its line with {@code measured} false.
   */
  private static List<Map<String, Object>> p99Targets(List<Map<String, Object>> rows) {
    List<Map<String, Object>> targets = new ArrayList<>();
    for (Map.Entry<String, Double> target : List.of(Map.entry("commands", 20.0), Map.entry("get", 5.0))) {
      Map<String, Object> line = new LinkedHashMap<>();
      line.put("workload", target.getKey());
      line.put("connections", TARGET_CONNECTIONS);
      line.put("targetMs", target.getValue());
      rows.stream().filter(r -> r.get("workload").equals(target.getKey())
              && r.get("connections").equals(TARGET_CONNECTIONS) && r.containsKey("halfRateLatencyMs"))
          .findFirst().ifPresentOrElse(row -> {
            Object p99 = ((Map<?, ?>) row.get("halfRateLatencyMs")).get("p99");
            line.put("measured", true);
            line.put("halfRate", row.get("halfRate"));
            line.put("p99Ms", p99);
            line.put("met", p99 instanceof Number n && n.doubleValue() < target.getValue());
          }, () -> line.put("measured", false));
      targets.add(line);
    }
    return targets;
  }

  private static long best(List<Map<String, Object>> rows, String workload, String field) {
    return rows.stream().filter(r -> r.get("workload").equals(workload) && r.get(field) != null)
        .mapToLong(r -> (Long) r.get(field)).max().orElse(0);
  }

  private static double ratio(long a, long b) {
    return b == 0 ? 0 : Report.round((double) a / b, 3);
  }

  private static Map<String, Object> phase(List<Map<String, Object>> phases, String name) {
    return phases.stream().filter(p -> p.get("name").equals(name)).findFirst().orElse(null);
  }

  /** Runs the phases: one load generator JVM each, with the server side metered meanwhile. */
  private record Runner(Options options, Generator generator, Path workDir, long brokerPid, NodeRuntime node,
                        int barePort, double idleCores, double idleBrokerCores, List<String> problems) {

    Map<String, Object> run(Phase phase) throws Exception {
      boolean kfold = phase.target().equals("kfold");
      int port = kfold ? node.httpPort() : barePort;
      System.gc();
      Thread.sleep(SETTLE_MILLIS);
      System.out.printf("%n[%s] %s ... (%.0f s into the run)%n", phase.name(), phase.label(),
          (System.nanoTime() - STARTED) / 1e9);
      Path out = workDir.resolve(phase.name() + ".json");
      List<String> arguments = List.of(
          "--port", Integer.toString(port), "--prefix", phase.prefix(),
          "--workload", phase.workload().option(),
          "--clients", Integer.toString(phase.clients()),
          "--per-client", Integer.toString(phase.perClient()),
          "--entities", Integer.toString(options.entities()),
          "--setup", Boolean.toString(phase.setup()),
          "--mode", phase.mode().name().toLowerCase().replace('_', '-'),
          "--rate", Double.toString(phase.rate()),
          "--warmup", Double.toString(phase.warmupSeconds()),
          "--duration", Double.toString(phase.durationSeconds()),
          "--out", out.toString());
      long appliedBefore = node.progress().applied.sum();
      // A flight recording of this JVM (the node, and the bare server idle) during kfold's closed loops.
      Recording recording = null;
      if (options.jfr() && kfold && phase.mode() == Mode.CLOSED) {
        recording = new Recording(Configuration.getConfiguration("profile"));
        recording.setToDisk(true);
        recording.start();
      }
      Meter meter = Meter.start(brokerPid);
      generator.run(arguments, (long) (phase.warmupSeconds() + phase.durationSeconds()) + 420);
      Map<String, Object> resources = meter.sample();
      if (recording != null) {
        Files.createDirectories(options.jfrDir());
        Path jfrFile = options.jfrDir().resolve("http-" + phase.name() + ".jfr").toAbsolutePath();
        recording.dump(jfrFile);
        recording.close();
        System.out.printf("  flight recording: %s%n", jfrFile);
      }
      if (!Files.exists(out)) {
        throw new IllegalStateException("the load generator wrote no results for " + phase.name());
      }
      @SuppressWarnings("unchecked")
      Map<String, Object> result = new ObjectMapper().readValue(out.toFile(), LinkedHashMap.class);
      Map<String, Object> json = new LinkedHashMap<>();
      json.put("name", phase.name());
      json.put("label", phase.label());
      json.put("target", phase.target());
      json.putAll(result);
      json.put("serverSideResources", resources);
      // The CPU one request cost the server side (this JVM) and the broker, over the whole phase (warm-up and
      // placing included) and net of what they use idle.
      long allRequests = ((Number) json.get("warmupRequests")).longValue()
          + ((Number) requests(json).get("requests")).longValue()
          + (json.get("place") instanceof Map<?, ?> place ? ((Number) place.get("requests")).longValue() : 0);
      double seconds = ((Number) resources.get("seconds")).doubleValue();
      if (allRequests > 0) {
        json.put("benchJvmCpuMicrosPerRequest", Report.round(
            (((Number) resources.get("benchJvmCpuSeconds")).doubleValue() - idleCores * seconds) * 1e6 / allRequests, 1));
        json.put("brokerCpuMicrosPerRequest", Report.round(
            (((Number) resources.get("brokerCpuSeconds")).doubleValue() - idleBrokerCores * seconds) * 1e6
                / allRequests, 1));
      }

      Map<String, Object> requests = requests(json);
      long non200 = ((Number) json.get("non200Total")).longValue();
      if (!Boolean.TRUE.equals(json.get("finished"))) {
        problems.add(phase.name() + ": the load generator's clients did not all finish in time");
      }
      if (kfold) {
        if (phase.workload() != Workload.GET) {
          // Each 200 answer to a write is one event appended and applied: the fold must have applied as many.
          awaitCaughtUp(node.progress(), 30);
          long applied = node.progress().applied.sum() - appliedBefore;
          long ok = ((Number) json.get("okTotal")).longValue();
          json.put("eventsApplied", applied);
          if (applied != ok) {
            problems.add(phase.name() + ": " + ok + " writes answered 200 but the fold applied " + applied + " events");
          }
        }
        if (non200 > 0) {
          problems.add(phase.name() + ": " + non200 + " answers other than 200 without any contention, e.g. "
              + requests.get("failureSamples"));
        }
      }
      Map<?, ?> latency = (Map<?, ?>) requests.get("latencyMs");
      System.out.printf("  %,d requests/s; p50 %s ms, p99 %s ms, p99.9 %s ms, max %s ms; non-200 %d; cores: server side"
          + " %s, generator %s, broker %s%s%n",
          perSecond(json), latency.get("p50"), latency.get("p99"), latency.get("p99.9"), latency.get("max"), non200,
          resources.get("benchJvmCores"), ((Map<?, ?>) json.get("resources")).get("generatorJvmCores"),
          resources.get("brokerCores"),
          phase.mode() == Mode.RATE ? "; answered after the next was due " + requests.get("answeredAfterNextDue") : "");
      return json;
    }
  }

  /**
   * The load generator: one JVM for the whole run ({@code LoadGenerator --serve}), which runs one phase
   * per line it is sent, so that every phase after the first meets a generator whose JIT is warm.
   * What it prints other than its answers goes to this JVM's output.
   */
  static final class Generator implements AutoCloseable {
    private final Process process;
    private final Writer input;
    private final BlockingQueue<String> answers = new LinkedBlockingQueue<>();
    private final Thread stopOnExit;

    private Generator(Process process) {
      this.process = process;
      this.input = new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8);
      Thread reader = new Thread(() -> {
        try (BufferedReader output = new BufferedReader(
            new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
          String line;
          while ((line = output.readLine()) != null) {
            if (line.startsWith(LoadGenerator.DONE) || line.startsWith(LoadGenerator.FAILED)) {
              answers.add(line);
            } else {
              System.out.println(line);
            }
          }
        } catch (IOException e) {
          // the generator is gone: run() notices
        }
        answers.add(LoadGenerator.FAILED + " the load generator exited");
      }, "load-generator-output");
      reader.setDaemon(true);
      reader.start();
      // Ctrl-C must not leave a generator behind.
      stopOnExit = new Thread(process::destroy, "stop-load-generator");
      Runtime.getRuntime().addShutdownHook(stopOnExit);
    }

    static Generator start() throws IOException {
      List<String> command = new ArrayList<>(List.of(
          Path.of(System.getProperty("java.home"), "bin", "java").toString(), GENERATOR_HEAP));
      String log4j = System.getProperty("log4j2.configurationFile");
      if (log4j != null) {
        command.add("-Dlog4j2.configurationFile=" + log4j);
      }
      command.addAll(List.of("-cp", System.getProperty("java.class.path"), LoadGenerator.class.getName(), "--serve"));
      return new Generator(new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT).start());
    }

    /** Runs one phase; fails if the generator fails it or takes more than {@code limitSeconds}. */
    void run(List<String> arguments, long limitSeconds) throws IOException, InterruptedException {
      input.write(String.join("\t", arguments) + "\n");
      input.flush();
      String answer = answers.poll(limitSeconds, TimeUnit.SECONDS);
      if (answer == null) {
        process.destroyForcibly();
        throw new IllegalStateException("the load generator ran a phase for more than " + limitSeconds + " s");
      }
      if (!answer.equals(LoadGenerator.DONE)) {
        throw new IllegalStateException("the load generator failed: " + answer);
      }
    }

    @Override
    public void close() {
      try {
        input.close();  // the end of its input ends it
      } catch (IOException gone) {
        // it exited already
      }
      try {
        if (!process.waitFor(30, TimeUnit.SECONDS)) {
          process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
      } catch (InterruptedException e) {
        process.destroyForcibly();
        Thread.currentThread().interrupt();
      }
      try {
        Runtime.getRuntime().removeShutdownHook(stopOnExit);
      } catch (IllegalStateException shuttingDown) {
        // the hook runs anyway
      }
    }
  }

  /** Waits until the fold applied {@code events} events and caught up. */
  private static void awaitApplied(FoldProgress progress, long events, int seconds) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    while (progress.applied.sum() < events) {
      check(progress, deadline, seconds);
      Thread.sleep(20);
    }
    awaitCaughtUp(progress, seconds);
  }

  private static void awaitCaughtUp(FoldProgress progress, int seconds) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    while (!progress.caughtUp()) {
      check(progress, deadline, seconds);
      Thread.sleep(20);
    }
  }

  private static void check(FoldProgress progress, long deadline, int seconds) {
    if (System.nanoTime() > deadline) {
      throw new IllegalStateException("the node did not catch up within " + seconds + " s; applied "
          + progress.applied.sum() + ", lag " + progress.lag());
    }
  }

  /** The exact bytes of one of the node's answers; a read that is not 200 fails the run. */
  private static byte[] read(int port, String path) throws IOException, InterruptedException {
    HttpResponse<byte[]> response = HttpClient.newHttpClient().send(
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).timeout(Duration.ofSeconds(10)).build(),
        HttpResponse.BodyHandlers.ofByteArray());
    if (response.statusCode() != 200) {
      throw new IllegalStateException("GET " + path + " answered " + response.statusCode() + ": "
          + new String(response.body()));
    }
    return response.body();
  }

  @SuppressWarnings("unchecked")
  static Map<String, Object> requests(Map<String, Object> phase) {
    return (Map<String, Object>) phase.get("requests");
  }

  static long perSecond(Map<String, Object> phase) {
    Object rate = requests(phase).get("perSecond");
    return rate == null ? 0 : ((Number) rate).longValue();
  }

  @SuppressWarnings("unchecked")
  /**
   * Polls {@code GET /ready} every 100 ms on a thread of its own and counts its flips from READY to
   * NOT_READY (any answer but 200, or none within 2 s).
   */
  static final class ReadyWatch {
    private final Thread thread;
    private volatile boolean running = true;
    private long polls;
    private long notReady;
    private long flips;
    private String lastNotReady;

    private ReadyWatch(int port) {
      HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
      HttpRequest request = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/ready"))
          .timeout(Duration.ofSeconds(2)).build();
      thread = new Thread(() -> {
        boolean wasReady = true;
        while (running) {
          long next = System.nanoTime() + 100_000_000L;
          String answer;
          boolean ready;
          try {
            HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
            ready = response.statusCode() == 200;
            answer = response.statusCode() + " " + response.body();
          } catch (IOException e) {
            ready = false;
            answer = e.toString();
          } catch (InterruptedException e) {
            return;
          }
          synchronized (this) {
            polls++;
            if (!ready) {
              notReady++;
              lastNotReady = answer;
              if (wasReady) {
                flips++;
              }
            }
          }
          wasReady = ready;
          long pause = (next - System.nanoTime()) / 1_000_000L;
          if (pause > 0) {
            try {
              Thread.sleep(pause);
            } catch (InterruptedException e) {
              return;
            }
          }
        }
      }, "ready-watch");
      thread.setDaemon(true);
    }

    static ReadyWatch start(int port) {
      ReadyWatch watch = new ReadyWatch(port);
      watch.thread.start();
      return watch;
    }

    Map<String, Object> stop() throws InterruptedException {
      running = false;
      thread.join(5000);
      synchronized (this) {
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("polls", polls);
        result.put("notReady", notReady);
        result.put("flipsToNotReady", flips);
        if (lastNotReady != null) {
          result.put("lastNotReady", lastNotReady);
        }
        System.out.printf("/ready polled %,d times during the measured phases: %d flips READY -> NOT_READY%n", polls,
            flips);
        return result;
      }
    }
  }

  static String table(Map<String, Object> run) {
    StringBuilder out = new StringBuilder();
    String format = "%-9s %5s %9s %24s %9s %24s %9s %10s %14s%n";
    out.append(String.format(format, "workload", "conns", "max /s", "p50 / p99 / p99.9 ms", "half /s",
        "p50 / p99 / p99.9 ms", "bare /s", "kfold/bare", "CPU us/request"));
    Map<String, Object> summary = (Map<String, Object>) run.get("summary");
    if (summary == null) {
      return out.toString();
    }
    for (Map<String, Object> row : Bench.list(summary, "rows")) {
      Object halfRate = row.get("halfRate");
      Object bare = row.get("barePerSecond");
      out.append(String.format(format, row.get("workload"), row.get("connections"),
          String.format("%,d", (Long) row.get("maxPerSecond")), latencies(row.get("latencyMs")),
          halfRate == null ? "-" : String.format("%,.0f", ((Number) halfRate).doubleValue()),
          halfRate == null ? "-" : latencies(row.get("halfRateLatencyMs")),
          bare == null ? "" : String.format("%,d", (Long) bare),
          bare == null ? "" : String.format("%.3f", (Double) row.get("kfoldToBare")),
          row.get("benchJvmCpuMicrosPerRequest") + (bare == null ? "" : " (" + row.get("bareBenchJvmCpuMicrosPerRequest")
              + ")")));
    }
    Map<String, Object> ready = (Map<String, Object>) run.get("ready");
    if (ready != null) {
      out.append(String.format("/ready every 100 ms during the measured phases: %s polls, %s flips READY -> NOT_READY%n",
          ready.get("polls"), ready.get("flipsToNotReady")));
    }
    out.append("max: closed loop; half: a fixed rate of half of it, latencies from each request's due time;"
        + " CPU: this JVM's (the node's) per request net of idle, the bare server's in brackets\n");
    Map<String, Object> get = (Map<String, Object>) summary.get("getToBare");
    if (get != null) {
      out.append(String.format("GET state / bare server, best rate of each: %,d / %,d = %.3f (target 0.6: %s)%n",
          (Long) get.get("kfoldMaxPerSecond"), (Long) get.get("bareMaxPerSecond"), (Double) get.get("kfoldToBare"),
          Boolean.TRUE.equals(get.get("met")) ? "met" : "not met"));
    }
    for (Map<String, Object> target : Bench.list(summary, "p99Targets")) {
      String what = target.get("workload").equals("get") ? "GET state" : (String) target.get("workload");
      if (Boolean.TRUE.equals(target.get("measured"))) {
        out.append(String.format("p99 target, %s at half the maximum rate at %d connections (%,.0f/s): p99 %s ms (target < %.0f"
            + " ms: %s)%n", what, ((Number) target.get("connections")).intValue(),
            ((Number) target.get("halfRate")).doubleValue(), target.get("p99Ms"),
            ((Number) target.get("targetMs")).doubleValue(),
            Boolean.TRUE.equals(target.get("met")) ? "met" : "missed"));
      } else {
        out.append(String.format("p99 target, %s at half the maximum rate at %d connections: not measured (needs %d in"
            + " --concurrencies, %s in --workloads and --rate-duration above 0)%n", what,
            ((Number) target.get("connections")).intValue(), ((Number) target.get("connections")).intValue(),
            target.get("workload")));
      }
    }
    out.append(rssPerPhase(run));
    return out.toString();
  }

  /**
   * The node's resident memory per phase, at its end and its peak during it: this JVM's, which runs the
   * node (with the node's heap, see run.sh) and the bare server.
   */
  private static String rssPerPhase(Map<String, Object> run) {
    List<Map<String, Object>> phases = Bench.list(run, "phases");
    if (phases == null || phases.isEmpty()) {
      return "";
    }
    String format = "%-24s %14s %14s%n";
    StringBuilder out = new StringBuilder(String.format(format, "phase", "node peak RSS", "node RSS at end"));
    for (Map<String, Object> phase : phases) {
      Map<?, ?> resources = (Map<?, ?>) phase.get("serverSideResources");
      Object peak = resources == null ? null : resources.get("benchJvmPeakRssMiB");
      Object end = resources == null ? null : resources.get("benchJvmRssMiB");
      out.append(String.format(format, phase.get("name"), peak == null ? "-" : peak + " MiB",
          end == null ? "-" : end + " MiB"));
    }
    return out.toString();
  }

  private static String latencies(Object latencyMs) {
    Map<?, ?> latency = (Map<?, ?>) latencyMs;
    return latency == null || latency.isEmpty() ? "-"
        : latency.get("p50") + " / " + latency.get("p99") + " / " + latency.get("p99.9");
  }
}
