package io.kfold.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.bench.LoadGenerator.Workload;
import io.vertx.core.Vertx;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * What the views cost the fold, and how the fold with views compares with Kafka Streams computing
 * the same {@code customers} view: on the same orders input in the same run, kfold's fold without
 * views, kfold's fold with the default configuration's two views ({@code customers},
 * {@code order-status}), and a Kafka Streams app that folds the orders and aggregates them per
 * customer with {@code groupBy().aggregate(adder, subtractor)} ({@code StreamsViewApp}).
 *
 * <p>The input ({@link ViewInput}) is produced twice, to the topics of two apps, before any reader
 * starts: kfold's two folds need topics of their own (a second fold of one app would restore from
 * the first one's changelog); the Streams app reads the first copy under its own application id.
 * Every reader runs in a cold JVM of its own and checks its results against the recomputation from
 * the input.
 *
 * <p>Then the reads: a node in this JVM reopens the store of the fold with views, and one load
 * generator ({@link LoadGenerator}, a JVM of its own) reads random orders
 * ({@code GET /v1/orders/<id>}) and random {@code customers} rows
 * ({@code GET /v1/_views/customers/<email>}) in closed loops, one after the other at each
 * concurrency: the row GET's p99 next to the entity GET's, same client, same node, same run.
 *
 * <p>Usage: {@code load-tests/run.sh views [--orders N] [--streams G[,G]|none] [--max-poll-records N]
 * [--concurrencies C[,C]] [--warmup S] [--duration S] [--warmup-phase S] [--jfr]}; see load-tests/README.md.
 */
public final class ViewBenchmark {

  private static final String APP = "views-bench";
  /** The shipment-request worker of the default configuration would call out for every paid order. */
  private static final Map<String, String> NODE_ENV = Map.of("KFOLD_EFFECTS_SHIPMENT_REQUEST_ENABLED", "false");
  private static final long STREAMS_TIMEOUT_SECONDS = 1_000;
  static final double GOAL_VIEWS_TO_ALONE = 0.8;
  static final double GOAL_VIEWS_TO_STREAMS = 1.5;

  private static final long SETTLE_MILLIS = 1_000;

  record Options(long orders, int maxPollRecords, List<String> streams, String streamsClasspath,
                 List<Integer> concurrencies, double warmupSeconds, double durationSeconds, double warmupPhaseSeconds,
                 boolean jfr, Path jfrDir) {

    static Options parse(Bench.Args args) {
      long orders = 200_000;
      String envMaxPoll = System.getenv("KFOLD_FOLD_MAX_POLL_RECORDS");
      int maxPollRecords = envMaxPoll == null || envMaxPoll.isBlank() ? 5_000 : Integer.parseInt(envMaxPoll.trim());
      List<String> streams = List.of("exactly_once_v2");
      String streamsClasspath = null;
      List<Integer> concurrencies = List.of(8, 32);
      double warmup = 2;
      double duration = 10;
      double warmupPhase = 10;
      boolean jfr = false;
      Path jfrDir = Path.of(".");
      while (args.next()) {
        switch (args.option()) {
          case "--orders" -> orders = Long.parseLong(args.value().replace("_", ""));
          case "--max-poll-records" -> maxPollRecords = Integer.parseInt(args.value());
          case "--streams" -> {
            String value = args.value().trim();
            streams = value.equals("none") ? List.of() : List.of(value.split("\\s*,\\s*"));
          }
          case "--streams-classpath" -> streamsClasspath = args.value();
          case "--concurrencies" -> concurrencies = Arrays.stream(args.value().split(","))
              .map(c -> Integer.parseInt(c.trim())).toList();
          case "--warmup" -> warmup = Double.parseDouble(args.value());
          case "--duration" -> duration = Double.parseDouble(args.value());
          case "--warmup-phase" -> warmupPhase = Double.parseDouble(args.value());
          case "--jfr" -> jfr = true;
          case "--jfr-dir" -> jfrDir = Path.of(args.value());
          default -> args.common();
        }
      }
      if (orders < 1_000 || orders > 10_000_000) {
        throw new IllegalArgumentException("--orders must be 1,000 to 10,000,000, not " + orders);
      }
      for (String guarantee : streams) {
        if (!StreamsRun.GUARANTEES.contains(guarantee)) {
          throw new IllegalArgumentException("--streams takes none or some of " + StreamsRun.GUARANTEES + ", not "
              + guarantee);
        }
      }
      if (!streams.isEmpty() && streamsClasspath == null) {
        throw new IllegalArgumentException("the Streams baseline needs --streams-classpath (run.sh gives it)");
      }
      if (duration <= 0 && !concurrencies.isEmpty()) {
        throw new IllegalArgumentException("--duration must be above 0");
      }
      return new Options(orders, maxPollRecords, streams, streamsClasspath, concurrencies, warmup, duration,
          warmupPhase, jfr, jfrDir);
    }

    /** Where the flight recording of a fold goes, or null without {@code --jfr}. */
    Path jfrFile(String name) throws IOException {
      if (!jfr) {
        return null;
      }
      Files.createDirectories(jfrDir);
      return jfrDir.resolve(name + ".jfr").toAbsolutePath();
    }
  }

  public static void main(String[] args) throws Exception {
    Bench.main(args, "views", Options::parse, ViewBenchmark::run, ViewBenchmark::table);
  }

  private static void run(Options options, Bench.Run run) throws Exception {
    ViewInput alone = new ViewInput(APP + "-noviews", options.orders());
    ViewInput withViews = new ViewInput(APP, options.orders());
    Map<String, Object> settings = new LinkedHashMap<>();
    settings.put("orders", options.orders());
    settings.put("events", alone.events());
    settings.put("customers", alone.customers);
    settings.put("ordersInCustomersView", alone.expectedInView());
    settings.put("partitions", Input.PARTITIONS);
    settings.put("maxPollRecords", options.maxPollRecords());
    settings.put("streamsGuarantees", options.streams());
    settings.put("configuration", "the default one built into kfold, shipment-request worker off; the fold alone"
        + " without its views (views: [])");
    settings.put("getConcurrencies", options.concurrencies());
    settings.put("getWarmupSeconds", options.warmupSeconds());
    settings.put("getDurationSeconds", options.durationSeconds());
    settings.put("getWarmupPhaseSeconds", options.warmupPhaseSeconds());
    run.json.put("settings", settings);
    run.announce(alone.label() + "; Kafka Streams " + (options.streams().isEmpty() ? "skipped"
        : String.join(", ", options.streams())));

    ObjectNode config = DefaultConfig.read();
    boolean viewsDeclared = DefaultConfig.declaresViews(config);
    run.json.put("viewsInDefaultConfiguration", viewsDeclared);

    run.withBroker(broker -> {
      try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap()))) {
        for (ViewInput input : List.of(alone, withViews)) {
          System.out.printf("%nproducing %s to %s ...%n", input.label(), input.topic);
          input.createTopic(admin);
          Map<String, Object> produced = input.produce(broker.bootstrap());
          run.json.put(input == alone ? "produce" : "produceWithViews", produced);
          System.out.printf("  produced in %.1f s (%,d events/s)%n", produced.get("seconds"),
              produced.get("eventsPerSecond"));
        }
      }

      // The fold alone first: the first fold after the inputs meets a busier broker (see the query
      // benchmark), so that bias goes against the baseline, not against the views.
      Bench.settle();
      System.out.printf("%nkfold folding the orders without views, in a JVM of its own ...%n");
      Map<String, String> env = new LinkedHashMap<>(NODE_ENV);
      env.put("KFOLD_CONFIG", DefaultConfig.write(DefaultConfig.withoutViews(config),
          run.workDir.resolve("kfold-no-views.yaml")).toString());
      Path aloneDir = run.workDir.resolve("kfold-noviews");
      Map<String, Object> foldAlone = KfoldRun.inOwnJvm(broker.bootstrap(), alone, env, false,
          options.maxPollRecords(), aloneDir, broker.pid(), options.jfrFile("views-fold-alone"), run.workDir);
      Bench.deleteTree(aloneDir);
      run.json.put("foldAlone", foldAlone);
      System.out.printf("  %,d events/s (first event applied after %.2f s, all after %.2f s)%n",
          foldAlone.get("eventsPerSecond"), foldAlone.get("secondsToFirstApplied"),
          foldAlone.get("secondsToAllApplied"));

      Bench.settle();
      Path viewsDir = run.workDir.resolve("kfold-views");
      Map<String, Object> foldViews = foldWithViews(options, withViews, viewsDeclared, broker.bootstrap(),
          broker.pid(), viewsDir, run.workDir);
      run.json.put("foldWithViews", foldViews);
      if (Boolean.TRUE.equals(foldViews.get("built")) && !options.concurrencies().isEmpty()) {
        run.json.put("gets", gets(options, withViews, viewsDir, broker.bootstrap(), broker.pid(), run));
      }
      Bench.deleteTree(viewsDir);

      List<Map<String, Object>> streamsRuns = new ArrayList<>();
      run.json.put("streams", streamsRuns);
      for (String guarantee : options.streams()) {
        Bench.settle();
        System.out.printf("%nKafka Streams (%s) folding the orders and aggregating the customers view, in a JVM of"
            + " its own ...%n", guarantee);
        Map<String, Object> streams = streamsRun(options.streamsClasspath(), broker.bootstrap(), alone, guarantee,
            run.workDir, broker.pid());
        streams.put("guarantee", guarantee);
        streamsRuns.add(streams);
        System.out.printf("  %,d events/s (all in the customers rows after %.2f s; orders folded after %.2f s;"
                + " first event applied after %.2f s); %s rows checked%n", streams.get("eventsPerSecond"),
            streams.get("secondsToAllInRows"), streams.get("secondsToAllFolded"),
            streams.get("secondsToFirstApplied"), streams.get("rowsChecked"));
      }
      run.json.put("ratios", ratios(foldAlone, foldViews, streamsRuns));
    });
  }

  /**
   * kfold's fold with the two views of the default configuration, on its own copy of the input; its
   * check reads a sample of the customers rows over HTTP. Without views in the default configuration
   * (a build before views) there is nothing to measure, and the run says so.
   */
  private static Map<String, Object> foldWithViews(Options options, ViewInput input, boolean viewsDeclared,
                                                   String bootstrap, long brokerPid, Path dataDir, Path workDir)
      throws Exception {
    if (!viewsDeclared) {
      System.out.printf("%nkfold with views: views not built on this branch (the default configuration declares"
          + " none)%n");
      Map<String, Object> result = new LinkedHashMap<>();
      result.put("built", false);
      result.put("reason", "views not built on this branch");
      return result;
    }
    System.out.printf("%nkfold folding the orders with the default configuration's views, in a JVM of its own ...%n");
    Map<String, Object> result = new LinkedHashMap<>();
    result.put("built", true);
    result.putAll(KfoldRun.inOwnJvm(bootstrap, input, NODE_ENV, true, options.maxPollRecords(), dataDir, brokerPid,
        options.jfrFile("views-fold-views"), workDir));
    System.out.printf("  %,d events/s (first event applied after %.2f s, every order event after %.2f s, every row"
            + " complete after %.2f s; %,d contributions applied)%n", result.get("eventsPerSecond"),
        result.get("secondsToFirstApplied"), result.get("secondsToOrdersFolded"), result.get("secondsToAllApplied"),
        result.get("contributionsApplied"));
    return result;
  }

  /**
   * Row GETs next to entity GETs: a node in this JVM on the store the fold with views left (nothing
   * left to fold), one load generator, closed loops of {@code GET /v1/orders/<random id>} and
   * {@code GET /v1/_views/customers/<random customer>} one after the other at each concurrency,
   * after a warm-up loop of each.
   */
  private static Map<String, Object> gets(Options options, ViewInput input, Path dataDir, String bootstrap,
                                          long brokerPid, Bench.Run run) throws Exception {
    Map<String, Object> gets = new LinkedHashMap<>();
    List<Map<String, Object>> phases = new ArrayList<>();
    List<Map<String, Object>> warmups = new ArrayList<>();
    Vertx vertx = Vertx.vertx();
    NodeRuntime node = null;
    try (HttpBenchmark.Generator generator = HttpBenchmark.Generator.start()) {
      Map<String, String> env = Bench.nodeEnv(input.app, dataDir, bootstrap);
      env.putAll(NODE_ENV);
      long start = System.nanoTime();
      node = NodeRuntime.start(vertx, NodeConfig.load(env)).await(120, TimeUnit.SECONDS);
      long deadline = start + TimeUnit.SECONDS.toNanos(120);
      while (!node.progress().caughtUp()) {
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException("the node on the views fold's store did not catch up in 120 s");
        }
        Thread.sleep(50);
      }
      double ready = (System.nanoTime() - start) / 1e9;
      gets.put("secondsToCaughtUp", Report.round(ready, 2));
      System.out.printf("%nnode on the views fold's store started on port %d, caught up after %.1f s%n",
          node.httpPort(), ready);
      if (options.warmupPhaseSeconds() > 0) {
        // Not in the table: the JIT of the node and of the generator, for both reads.
        for (Workload workload : List.of(Workload.ORDER, Workload.ROW)) {
          warmups.add(phase(generator, node, input, run, "warmup-" + workload.option(), workload,
              options.concurrencies().get(0), 0, options.warmupPhaseSeconds(), brokerPid));
        }
      }
      for (int clients : options.concurrencies()) {
        for (Workload workload : List.of(Workload.ORDER, Workload.ROW)) {
          phases.add(phase(generator, node, input, run, workload.option() + "-c" + clients, workload, clients,
              options.warmupSeconds(), options.durationSeconds(), brokerPid));
        }
      }
    } finally {
      if (node != null) {
        node.stop().await(120, TimeUnit.SECONDS);
      }
      vertx.close().await(60, TimeUnit.SECONDS);
    }
    gets.put("phases", phases);
    gets.put("warmupPhases", warmups);
    return gets;
  }

  /** One closed loop of the load generator against the node; a non-200 answer is a problem of the run. */
  private static Map<String, Object> phase(HttpBenchmark.Generator generator, NodeRuntime node, ViewInput input,
                                           Bench.Run run, String name, Workload workload, int clients,
                                           double warmupSeconds, double durationSeconds, long brokerPid)
      throws Exception {
    System.gc();
    Thread.sleep(SETTLE_MILLIS);
    System.out.printf("%n[%s] %s, %d connections ...%n", name, workload == Workload.ROW
        ? "GET of a random customers row" : "GET of a random order", clients);
    Path out = run.workDir.resolve(name + ".json");
    List<String> arguments = List.of(
        "--port", Integer.toString(node.httpPort()), "--prefix", name,
        "--workload", workload.option(),
        "--clients", Integer.toString(clients),
        "--entities", Long.toString(input.orders),
        "--customers", Integer.toString(input.customers),
        "--mode", "closed",
        "--warmup", Double.toString(warmupSeconds),
        "--duration", Double.toString(durationSeconds),
        "--out", out.toString());
    Meter meter = Meter.start(brokerPid);
    generator.run(arguments, (long) (warmupSeconds + durationSeconds) + 420);
    Map<String, Object> resources = meter.sample();
    if (!Files.exists(out)) {
      throw new IllegalStateException("the load generator wrote no results for " + name);
    }
    @SuppressWarnings("unchecked")
    Map<String, Object> json = new LinkedHashMap<>(new ObjectMapper().readValue(out.toFile(), LinkedHashMap.class));
    json.put("name", name);
    json.put("serverSideResources", resources);
    Map<String, Object> requests = HttpBenchmark.requests(json);
    long non200 = ((Number) json.get("non200Total")).longValue();
    if (!Boolean.TRUE.equals(json.get("finished"))) {
      run.problems.add(name + ": the load generator's clients did not all finish in time");
    }
    if (non200 > 0) {
      run.problems.add(name + ": " + non200 + " answers other than 200, e.g. " + requests.get("failureSamples"));
    }
    Map<?, ?> latency = (Map<?, ?>) requests.get("latencyMs");
    System.out.printf("  %,d requests/s; p50 %s ms, p99 %s ms, p99.9 %s ms, max %s ms; non-200 %d; cores: node %s,"
            + " generator %s%n", HttpBenchmark.perSecond(json), latency.get("p50"), latency.get("p99"),
        latency.get("p99.9"), latency.get("max"), non200, resources.get("benchJvmCores"),
        ((Map<?, ?>) json.get("resources")).get("generatorJvmCores"));
    return json;
  }

  /** {@code StreamsViewApp} in a JVM of its own, on the Streams classpath (see {@link StreamsRun}). */
  private static Map<String, Object> streamsRun(String classpath, String bootstrap, ViewInput input, String guarantee,
                                                Path workDir, long brokerPid) throws Exception {
    String applicationId = input.app + "-streams-" + StreamsRun.shortName(guarantee);
    Path stateDir = Files.createDirectories(workDir.resolve(applicationId));
    Path resultFile = workDir.resolve(applicationId + "-result.json");
    ChildJvm.run(ChildJvm.command(classpath, "io.kfold.bench.StreamsViewApp", List.of(
        "--bootstrap", bootstrap,
        "--app", input.app,
        "--orders", Long.toString(input.orders),
        "--application-id", applicationId,
        "--state-dir", stateDir.toString(),
        "--guarantee", guarantee,
        "--broker-pid", Long.toString(brokerPid),
        "--result", resultFile.toString())), STREAMS_TIMEOUT_SECONDS, "the Streams views app (" + guarantee + ")");
    Map<String, Object> result = ChildJvm.readResult(resultFile);
    Bench.deleteTree(stateDir);
    return result;
  }

  private static Map<String, Object> ratios(Map<String, Object> alone, Map<String, Object> views,
                                            List<Map<String, Object>> streamsRuns) {
    Map<String, Object> ratios = new LinkedHashMap<>();
    boolean built = Boolean.TRUE.equals(views.get("built"));
    if (built) {
      double ratio = FoldBenchmark.rate(views) / FoldBenchmark.rate(alone);
      ratios.put("viewsToAlone", Report.round(ratio, 3));
      ratios.put("viewsToAloneGoal", GOAL_VIEWS_TO_ALONE);
      ratios.put("viewsToAloneMet", ratio >= GOAL_VIEWS_TO_ALONE);
    }
    for (Map<String, Object> streams : streamsRuns) {
      String name = StreamsRun.shortName((String) streams.get("guarantee"));
      // Informative only: the fold alone does less than the Streams app, which also aggregates.
      ratios.put("aloneToStreams-" + name, Report.round(FoldBenchmark.rate(alone) / FoldBenchmark.rate(streams), 3));
      if (built) {
        double ratio = FoldBenchmark.rate(views) / FoldBenchmark.rate(streams);
        ratios.put("viewsToStreams-" + name, Report.round(ratio, 3));
        ratios.put("viewsToStreamsGoal", GOAL_VIEWS_TO_STREAMS);
        ratios.put("viewsToStreamsMet-" + name, ratio >= GOAL_VIEWS_TO_STREAMS);
      }
    }
    return ratios;
  }

  @SuppressWarnings("unchecked")
  private static String table(Map<String, Object> run) {
    StringBuilder out = new StringBuilder();
    Map<String, Object> settings = (Map<String, Object>) run.get("settings");
    out.append(String.format("%,d orders, %,d events, %,d customers (%,d orders paid or shipped)%n",
        ((Number) settings.get("orders")).longValue(), ((Number) settings.get("events")).longValue(),
        ((Number) settings.get("customers")).longValue(), ((Number) settings.get("ordersInCustomersView")).longValue()));
    String format = "%-52s %10s %12s %10s%n";
    out.append(String.format(format, "reader", "events/s", "first event", "all s"));
    Map<String, Object> alone = (Map<String, Object>) run.get("foldAlone");
    if (alone != null) {
      out.append(String.format(format, "kfold fold, no views", String.format("%,d", number(alone, "eventsPerSecond")),
          alone.get("secondsToFirstApplied"), alone.get("secondsToAllApplied")));
    }
    Map<String, Object> views = (Map<String, Object>) run.get("foldWithViews");
    if (views != null) {
      if (Boolean.TRUE.equals(views.get("built"))) {
        out.append(String.format(format, "kfold fold, views customers + order-status",
            String.format("%,d", number(views, "eventsPerSecond")), views.get("secondsToFirstApplied"),
            views.get("secondsToAllApplied")));
      } else {
        out.append(String.format("%-52s %s%n", "kfold fold, views customers + order-status", views.get("reason")));
      }
    }
    List<Map<String, Object>> streamsRuns = (List<Map<String, Object>>) run.get("streams");
    if (streamsRuns != null) {
      for (Map<String, Object> streams : streamsRuns) {
        out.append(String.format(format, "Kafka Streams " + StreamsRun.shortName((String) streams.get("guarantee"))
                + ", orders + customers aggregate", String.format("%,d", number(streams, "eventsPerSecond")),
            streams.get("secondsToFirstApplied"), streams.get("secondsToAllInRows")));
      }
    }
    if (views != null && Boolean.TRUE.equals(views.get("built"))) {
      out.append(String.format("with views: every order event folded after %s s, every row of both views equal to the"
              + " recomputation after %s s (its clock); %,d contributions applied%n", views.get("secondsToOrdersFolded"),
          views.get("secondsToAllApplied"), number(views, "contributionsApplied")));
    }
    out.append(String.format("checked against the recomputation from the input: %s%n", checks(alone, views,
        streamsRuns)));
    Map<String, Object> ratios = (Map<String, Object>) run.get("ratios");
    if (ratios != null) {
      out.append(ratios.containsKey("viewsToAlone")
          ? String.format("with views / alone: %.3f (goal >= %.1f: %s)%n", ((Number) ratios.get("viewsToAlone")).doubleValue(),
              GOAL_VIEWS_TO_ALONE, Boolean.TRUE.equals(ratios.get("viewsToAloneMet")) ? "met" : "not met")
          : String.format("with views / alone: - (views not built on this branch)%n"));
      for (Map.Entry<String, Object> ratio : ratios.entrySet()) {
        if (ratio.getKey().startsWith("viewsToStreams-")) {
          String name = ratio.getKey().substring("viewsToStreams-".length());
          out.append(String.format("with views / Streams %s: %.3f (goal >= %.1f: %s)%n", name,
              ((Number) ratio.getValue()).doubleValue(), GOAL_VIEWS_TO_STREAMS,
              Boolean.TRUE.equals(ratios.get("viewsToStreamsMet-" + name)) ? "met" : "not met"));
        } else if (ratio.getKey().startsWith("aloneToStreams-")) {
          out.append(String.format("fold alone / Streams %s: %.3f (informative: the Streams app also aggregates)%n",
              ratio.getKey().substring("aloneToStreams-".length()), ((Number) ratio.getValue()).doubleValue()));
        }
      }
    }
    Map<String, Object> gets = (Map<String, Object>) run.get("gets");
    if (gets != null) {
      out.append(String.format("%n%-44s %5s %9s %26s%n", "one node, one load generator, closed loops", "conns", "GET /s",
          "p50 / p99 / p99.9 ms"));
      Map<Object, Double> orderP99 = new LinkedHashMap<>();
      for (Map<String, Object> phase : (List<Map<String, Object>>) gets.get("phases")) {
        Map<String, Object> latency = (Map<String, Object>) HttpBenchmark.requests(phase).get("latencyMs");
        boolean row = "row".equals(phase.get("workload"));
        out.append(String.format("%-44s %5s %9s %26s%n", row ? "row GET /v1/_views/customers/<email>"
                : "entity GET /v1/orders/<id>", phase.get("clients"), String.format("%,d", HttpBenchmark.perSecond(phase)),
            latency.get("p50") + " / " + latency.get("p99") + " / " + latency.get("p99.9")));
        double p99 = ((Number) latency.get("p99")).doubleValue();
        if (!row) {
          orderP99.put(phase.get("clients"), p99);
        } else if (orderP99.containsKey(phase.get("clients"))) {
          out.append(String.format("  row GET p99 / entity GET p99 at %s connections: %.2f%n", phase.get("clients"),
              p99 / orderP99.get(phase.get("clients"))));
        }
      }
    } else {
      out.append(String.format("row GET p99 next to entity GET p99: not measured%n"));
    }
    return out.toString();
  }

  /** What each reader checked; a reader whose check failed ended the run before the table. */
  private static String checks(Map<String, Object> alone, Map<String, Object> views,
                               List<Map<String, Object>> streamsRuns) {
    List<String> checks = new ArrayList<>();
    if (alone != null) {
      checks.add("fold alone " + alone.get("statesChecked") + " orders");
    }
    if (views != null && Boolean.TRUE.equals(views.get("built"))) {
      checks.add("with views " + views.get("statesChecked") + " orders and rows (and every row, for its clock)");
    }
    if (streamsRuns != null) {
      streamsRuns.forEach(streams -> checks.add("Streams " + StreamsRun.shortName((String) streams.get("guarantee"))
          + " " + streams.get("rowsChecked") + " rows"));
    }
    return String.join(", ", checks);
  }

  private static long number(Map<String, Object> map, String name) {
    return ((Number) map.get(name)).longValue();
  }

}
