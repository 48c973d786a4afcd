package io.kfold.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.kfold.KfoldConfig;
import io.kfold.KfoldNode;
import io.kfold.fold.FoldProgress;
import io.kfold.log.LocalBroker;
import io.vertx.core.Vertx;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Commands over HTTP: how many {@code POST /v1/orders/{id}/commands} a kfold node answers per
 * second for 32 clients without contention, and how long each takes, next to a bare Vert.x server
 * that answers the same requests with a fixed JSON body, hit by the same load generator in the same run.
 *
 * <p>One broker and one node for the whole run; the node (and the bare server, in a Vert.x
 * instance of its own) run in this JVM, the load in another ({@link LoadGenerator}), one per phase:
 * <ol>
 *   <li>the bare server, closed loop;</li>
 *   <li>kfold, closed loop: its maximum rate;</li>
 *   <li>kfold at a fixed rate of half that maximum, latencies from each command's due time;</li>
 *   <li>the bare server at the same fixed rate;</li>
 *   <li>kfold, closed loop, each command with {@code If-Match} from a {@code GET} just before it.</li>
 * </ol>
 * After each kfold phase the fold must have applied exactly one event per 200 answer.
 *
 * <p>Usage: {@code load-tests/run.sh commands [--clients N] [--orders-per-client N] [--warmup S]
 * [--duration S] [--kfold-warmup S] [--rate-duration S] [--if-match-duration S]}; see load-tests/README.md.
 */
public final class CommandBenchmark {

  private static final String APP = "command-bench";
  private static final String GENERATOR_HEAP = "-Xmx512m";
  private static final double RATE_WARMUP_SECONDS = 3;

  record Options(int clients, int ordersPerClient, double warmupSeconds, double durationSeconds,
                 double kfoldWarmupSeconds, double rateDurationSeconds, double ifMatchDurationSeconds, Path workDir,
                 Path resultsDir,
                 String revision) {

    static Options parse(String[] args) {
      int clients = 32;
      int ordersPerClient = 50;
      double warmup = 5;
      double duration = 20;
      double rateDuration = 15;
      double ifMatchDuration = 10;
      double kfoldWarmup = 0;
      Path workDir = null;
      Path resultsDir = Path.of("load-tests", "results");
      String revision = "unknown";
      for (int i = 0; i < args.length; i++) {
        String arg = args[i];
        switch (arg) {
          case "--clients" -> clients = Integer.parseInt(value(args, ++i, arg));
          case "--orders-per-client" -> ordersPerClient = Integer.parseInt(value(args, ++i, arg));
          case "--warmup" -> warmup = Double.parseDouble(value(args, ++i, arg));
          case "--duration" -> duration = Double.parseDouble(value(args, ++i, arg));
          case "--rate-duration" -> rateDuration = Double.parseDouble(value(args, ++i, arg));
          case "--if-match-duration" -> ifMatchDuration = Double.parseDouble(value(args, ++i, arg));
          case "--kfold-warmup" -> kfoldWarmup = Double.parseDouble(value(args, ++i, arg));
          case "--work-dir" -> workDir = Path.of(value(args, ++i, arg));
          case "--results-dir" -> resultsDir = Path.of(value(args, ++i, arg));
          case "--revision" -> revision = value(args, ++i, arg);
          default -> throw new IllegalArgumentException("unknown option " + arg + " (see load-tests/README.md)");
        }
      }
      if (clients < 1 || ordersPerClient < 1 || ordersPerClient > 1000 || duration <= 0 || rateDuration < 0) {
        throw new IllegalArgumentException("--clients and --duration must be positive, --orders-per-client 1 to 1000");
      }
      return new Options(clients, ordersPerClient, warmup, duration, kfoldWarmup, rateDuration, ifMatchDuration,
          workDir, resultsDir, revision);
    }

    private static String value(String[] args, int i, String option) {
      if (i >= args.length) {
        throw new IllegalArgumentException(option + " needs a value");
      }
      return args[i];
    }
  }

  /** One run of the load generator against one server. */
  private record Phase(String name, String label, String target, LoadGenerator.Mode mode, double rate,
                       double warmupSeconds, double durationSeconds) {}

  public static void main(String[] args) throws Exception {
    Options options;
    try {
      options = Options.parse(args);
    } catch (IllegalArgumentException e) {
      System.err.println(e.getMessage());
      System.exit(2);
      return;
    }
    boolean ownWorkDir = options.workDir() == null;
    Path workDir = ownWorkDir ? Files.createTempDirectory("kfold-commands-bench-") : options.workDir();
    Instant date = Instant.now().truncatedTo(ChronoUnit.SECONDS);
    List<String> problems = new ArrayList<>();
    try {
      Map<String, Object> run = run(options, workDir, date, problems);
      System.out.println();
      System.out.print(table(run));
      Path file = options.resultsDir().resolve("commands-" + FoldBenchmark.FILE_TIME.format(date) + ".json");
      Report.writeJson(file, run);
      System.out.println();
      System.out.println("written to " + file);
    } finally {
      if (ownWorkDir) {
        FoldBenchmark.deleteTree(workDir);
      }
    }
    if (!problems.isEmpty()) {
      System.out.println();
      problems.forEach(p -> System.out.println("PROBLEM: " + p));
      System.exit(1);
    }
  }

  private static Map<String, Object> run(Options options, Path workDir, Instant date, List<String> problems)
      throws Exception {
    Map<String, Object> run = new LinkedHashMap<>();
    run.put("date", date.toString());
    Map<String, Object> machine = Report.machine();
    run.put("machine", machine);
    run.put("revision", options.revision());
    run.put("loadAverageAtStart", Report.loadAverage());
    Map<String, Object> settings = new LinkedHashMap<>();
    settings.put("clients", options.clients());
    settings.put("ordersPerClient", options.ordersPerClient());
    settings.put("warmupSeconds", options.warmupSeconds());
    settings.put("durationSeconds", options.durationSeconds());
    settings.put("rateWarmupSeconds", RATE_WARMUP_SECONDS);
    settings.put("rateDurationSeconds", options.rateDurationSeconds());
    settings.put("ifMatchDurationSeconds", options.ifMatchDurationSeconds());
    settings.put("kfoldWarmupSeconds", options.kfoldWarmupSeconds());
    settings.put("partitions", Input.PARTITIONS);
    settings.put("generatorJvm", GENERATOR_HEAP);
    settings.put("configuration", "the default one built into kfold (with its shipment-request worker)");
    run.put("settings", settings);

    System.out.printf("commands benchmark: %s, %d cores, Java %s; %d clients, %d orders each%n",
        machine.get("cpu"), machine.get("nproc"), machine.get("java"), options.clients(), options.ordersPerClient());
    long others = Report.otherBrokers(-1);
    run.put("otherBrokersAtStart", others);
    if (others > 0) {
      System.out.printf("WARNING: %d other Kafka broker(s) running on this machine; figures will be low%n", others);
    }

    long brokerStart = System.nanoTime();
    LocalBroker broker = LocalBroker.start(workDir.resolve("broker"), LocalBroker.defaultLibs(), 0);
    Thread stopBroker = new Thread(broker::close, "stop-bench-broker");
    Runtime.getRuntime().addShutdownHook(stopBroker);
    List<Map<String, Object>> phases = new ArrayList<>();
    run.put("phases", phases);
    try {
      System.out.printf("broker pid %d on %s, ready in %.1f s%n", broker.pid(), broker.bootstrap(),
          (System.nanoTime() - brokerStart) / 1e9);
      Map<String, String> env = Map.of(
          "KFOLD_APP", APP,
          "KFOLD_DATA_DIR", workDir.resolve("kfold").toString(),
          "KFOLD_HTTP_PORT", "0",
          "KFOLD_KAFKA_BOOTSTRAP", broker.bootstrap(),
          "KFOLD_KAFKA_PARTITIONS", Integer.toString(Input.PARTITIONS));
      Vertx nodeVertx = Vertx.vertx();
      BareServer bare = BareServer.launch();
      try {
        KfoldNode node = KfoldNode.start(nodeVertx, KfoldConfig.load(env)).await(120, TimeUnit.SECONDS);
        try {
          awaitCaughtUp(node.progress(), 60);
          System.out.printf("kfold node on port %d, bare server on port %d%n", node.httpPort(), bare.port());
          Runner runner = new Runner(options, workDir, broker.pid(), node, bare.port(), problems);

          Map<String, Object> bareClosed = runner.run(new Phase("bare-closed", "bare server, closed loop", "bare",
              LoadGenerator.Mode.CLOSED, 0, options.warmupSeconds(), options.durationSeconds()));
          phases.add(bareClosed);
          if (options.kfoldWarmupSeconds() > 0) {
            // Not in the table: a closed loop on kfold alone, so that the measured phases meet a warm node.
            run.put("kfoldWarmup", runner.run(new Phase("kfold-warmup", "kfold warm-up, closed loop", "kfold",
                LoadGenerator.Mode.CLOSED, 0, 0, options.kfoldWarmupSeconds())));
          }
          Map<String, Object> kfoldClosed = runner.run(new Phase("kfold-closed", "kfold commands, closed loop",
              "kfold", LoadGenerator.Mode.CLOSED, 0, options.warmupSeconds(), options.durationSeconds()));
          phases.add(kfoldClosed);
          long kfoldMax = perSecond(kfoldClosed);
          long bareMax = perSecond(bareClosed);
          double halfRate = Math.max(1, kfoldMax / 2.0);
          if (options.rateDurationSeconds() > 0) {
            phases.add(runner.run(new Phase("kfold-rate", String.format("kfold at %,.0f/s (half its max)", halfRate),
                "kfold", LoadGenerator.Mode.RATE, halfRate, RATE_WARMUP_SECONDS, options.rateDurationSeconds())));
            phases.add(runner.run(new Phase("bare-rate", String.format("bare server at %,.0f/s", halfRate),
                "bare", LoadGenerator.Mode.RATE, halfRate, RATE_WARMUP_SECONDS, options.rateDurationSeconds())));
          }
          if (options.ifMatchDurationSeconds() > 0) {
            phases.add(runner.run(new Phase("kfold-if-match", "kfold GET + If-Match command, closed", "kfold",
                LoadGenerator.Mode.IF_MATCH, 0, RATE_WARMUP_SECONDS, options.ifMatchDurationSeconds())));
          }

          Map<String, Object> summary = new LinkedHashMap<>();
          summary.put("bareRequestsPerSecond", bareMax);
          summary.put("kfoldCommandsPerSecond", kfoldMax);
          summary.put("kfoldToBare", Report.round((double) kfoldMax / bareMax, 4));
          summary.put("kfoldLatencyMs", commands(kfoldClosed).get("latencyMs"));
          summary.put("halfRate", Report.round(halfRate, 1));
          phases.stream().filter(p -> p.get("name").equals("kfold-rate")).findFirst()
              .ifPresent(p -> summary.put("kfoldAtHalfRateLatencyMs", commands(p).get("latencyMs")));
          run.put("summary", summary);
          run.put("effectWorkers", get(node.httpPort(), "/v1/_effects"));
          run.put("foldAtEnd", Map.of("applied", node.progress().applied.sum(),
              "conflicts", node.progress().conflicts.sum(), "duplicates", node.progress().duplicates.sum(),
              "deadLettered", node.progress().deadLettered.sum()));
        } finally {
          node.stop().await(120, TimeUnit.SECONDS);
        }
      } finally {
        bare.close();
        nodeVertx.close().await(60, TimeUnit.SECONDS);
      }
    } finally {
      broker.close();
      try {
        Runtime.getRuntime().removeShutdownHook(stopBroker);
      } catch (IllegalStateException shuttingDown) {
        // the hook runs anyway
      }
    }
    long othersAtEnd = Report.otherBrokers(broker.pid());
    run.put("otherBrokersAtEnd", othersAtEnd);
    if (othersAtEnd > 0 && others == 0) {
      System.out.printf("WARNING: %d other Kafka broker(s) started during the run; figures may be low%n", othersAtEnd);
    }
    return run;
  }

  /** Runs the phases: one load generator JVM each, with the server side metered meanwhile. */
  private record Runner(Options options, Path workDir, long brokerPid, KfoldNode node, int barePort,
                        List<String> problems) {

    Map<String, Object> run(Phase phase) throws Exception {
      boolean kfold = phase.target().equals("kfold");
      int port = kfold ? node.httpPort() : barePort;
      FoldBenchmark.settle();
      System.out.printf("%n[%s] %s ...%n", phase.name(), phase.label());
      Path out = workDir.resolve(phase.name() + ".json");
      List<String> command = new ArrayList<>(List.of(
          Path.of(System.getProperty("java.home"), "bin", "java").toString(), GENERATOR_HEAP));
      String log4j = System.getProperty("log4j2.configurationFile");
      if (log4j != null) {
        command.add("-Dlog4j2.configurationFile=" + log4j);
      }
      command.addAll(List.of("-cp", System.getProperty("java.class.path"), LoadGenerator.class.getName(),
          "--port", Integer.toString(port), "--prefix", phase.name(),
          "--clients", Integer.toString(options.clients()),
          "--orders-per-client", Integer.toString(options.ordersPerClient()),
          "--mode", phase.mode().name().toLowerCase().replace('_', '-'),
          "--rate", Double.toString(phase.rate()),
          "--warmup", Double.toString(phase.warmupSeconds()),
          "--duration", Double.toString(phase.durationSeconds()),
          "--out", out.toString()));
      long appliedBefore = node.progress().applied.sum();
      Meter meter = Meter.start(brokerPid);
      Process generator = new ProcessBuilder(command).inheritIO().start();
      // Ctrl-C must not leave a generator behind.
      Thread stopGenerator = new Thread(generator::destroy, "stop-load-generator");
      Runtime.getRuntime().addShutdownHook(stopGenerator);
      int exit;
      try {
        long limit = (long) (phase.warmupSeconds() + phase.durationSeconds()) + 420;
        if (!generator.waitFor(limit, TimeUnit.SECONDS)) {
          generator.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
          throw new IllegalStateException("the load generator of " + phase.name() + " ran for more than " + limit
              + " s");
        }
        exit = generator.exitValue();
      } finally {
        Runtime.getRuntime().removeShutdownHook(stopGenerator);
      }
      Map<String, Object> resources = meter.sample();
      if (exit != 0 || !Files.exists(out)) {
        throw new IllegalStateException("the load generator of " + phase.name() + " failed (exit " + exit + ")");
      }
      @SuppressWarnings("unchecked")
      Map<String, Object> result = new ObjectMapper().readValue(out.toFile(), LinkedHashMap.class);
      Map<String, Object> json = new LinkedHashMap<>();
      json.put("name", phase.name());
      json.put("label", phase.label());
      json.put("target", phase.target());
      json.putAll(result);
      json.put("serverSideResources", resources);

      Map<String, Object> commands = commands(json);
      long non200 = ((Number) commands.get("non200")).longValue()
          + ((Number) ((Map<?, ?>) json.get("place")).get("non200")).longValue();
      if (!Boolean.TRUE.equals(json.get("finished"))) {
        problems.add(phase.name() + ": the load generator's clients did not all finish in time");
      }
      if (kfold) {
        // Each 200 answer is one event appended and applied: the fold must have applied exactly as many.
        awaitCaughtUp(node.progress(), 30);
        long applied = node.progress().applied.sum() - appliedBefore;
        long ok = ((Number) json.get("okTotal")).longValue();
        json.put("eventsApplied", applied);
        if (applied != ok) {
          problems.add(phase.name() + ": " + ok + " commands answered 200 but the fold applied " + applied + " events");
        }
        if (non200 > 0) {
          problems.add(phase.name() + ": " + non200 + " answers other than 200 without any contention, e.g. "
              + commands.get("failureSamples"));
        }
      }
      Map<?, ?> latency = (Map<?, ?>) commands.get("latencyMs");
      System.out.printf("  %,d commands/s; p50 %s ms, p99 %s ms, p99.9 %s ms, max %s ms; non-200 %d%s%n",
          perSecond(json), latency.get("p50"), latency.get("p99"), latency.get("p99.9"), latency.get("max"), non200,
          phase.mode() == LoadGenerator.Mode.RATE
              ? "; answered after the next was due " + commands.get("answeredAfterNextDue") : "");
      return json;
    }
  }

  private static void awaitCaughtUp(FoldProgress progress, int seconds) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    while (!progress.caughtUp()) {
      if (progress.failure() != null) {
        throw new IllegalStateException("the fold failed", progress.failure());
      }
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("the node did not catch up within " + seconds + " s; lag " + progress.lag());
      }
      Thread.sleep(20);
    }
  }

  @SuppressWarnings("unchecked")
  static Map<String, Object> commands(Map<String, Object> phase) {
    return (Map<String, Object>) phase.get("commands");
  }

  static long perSecond(Map<String, Object> phase) {
    Object rate = commands(phase).get("perSecond");
    return rate == null ? 0 : ((Number) rate).longValue();
  }

  /** A small read of the node's own API, for the record. */
  private static Object get(int port, String path) {
    try {
      HttpResponse<String> response = HttpClient.newHttpClient().send(
          HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).timeout(Duration.ofSeconds(10)).build(),
          HttpResponse.BodyHandlers.ofString());
      return new ObjectMapper().readValue(response.body(), Object.class);
    } catch (IOException | RuntimeException e) {
      return "GET " + path + " failed: " + e;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "interrupted";
    }
  }

  static String table(Map<String, Object> run) {
    String format = "%-40s %10s %9s %9s %9s %9s %8s%n";
    StringBuilder out = new StringBuilder();
    Map<?, ?> settings = (Map<?, ?>) run.get("settings");
    out.append(String.format(format, "phase (" + settings.get("clients") + " clients)", "req/s", "p50 ms", "p99 ms",
        "p99.9 ms", "max ms", "non-200"));
    @SuppressWarnings("unchecked")
    List<Map<String, Object>> phases = (List<Map<String, Object>>) run.get("phases");
    for (Map<String, Object> phase : phases) {
      Map<String, Object> commands = commands(phase);
      Map<?, ?> latency = (Map<?, ?>) commands.get("latencyMs");
      out.append(String.format(format, phase.get("label"), String.format("%,d", perSecond(phase)),
          latency.get("p50"), latency.get("p99"), latency.get("p99.9"), latency.get("max"), commands.get("non200")));
    }
    Map<?, ?> summary = (Map<?, ?>) run.get("summary");
    if (summary != null) {
      out.append(String.format("kfold/bare (closed loop): %.4f%n", (Double) summary.get("kfoldToBare")));
    }
    return out.toString();
  }
}
