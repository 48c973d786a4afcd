package io.kfold.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.kfold.KfoldConfig;
import io.kfold.KfoldNode;
import io.kfold.fold.FoldProgress;
import io.vertx.core.Vertx;

import java.nio.file.Files;
import java.nio.file.Path;
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
                 double kfoldWarmupSeconds, double rateDurationSeconds, double ifMatchDurationSeconds) {

    static Options parse(Bench.Args args) {
      int clients = 32;
      int ordersPerClient = 50;
      double warmup = 5;
      double duration = 20;
      double rateDuration = 15;
      double ifMatchDuration = 10;
      double kfoldWarmup = 0;
      while (args.next()) {
        switch (args.option()) {
          case "--clients" -> clients = Integer.parseInt(args.value());
          case "--orders-per-client" -> ordersPerClient = Integer.parseInt(args.value());
          case "--warmup" -> warmup = Double.parseDouble(args.value());
          case "--duration" -> duration = Double.parseDouble(args.value());
          case "--rate-duration" -> rateDuration = Double.parseDouble(args.value());
          case "--if-match-duration" -> ifMatchDuration = Double.parseDouble(args.value());
          case "--kfold-warmup" -> kfoldWarmup = Double.parseDouble(args.value());
          default -> args.common();
        }
      }
      if (clients < 1 || ordersPerClient < 1 || ordersPerClient > 1000 || duration <= 0 || rateDuration < 0) {
        throw new IllegalArgumentException("--clients and --duration must be positive, --orders-per-client 1 to 1000");
      }
      return new Options(clients, ordersPerClient, warmup, duration, kfoldWarmup, rateDuration, ifMatchDuration);
    }
  }

  /** One run of the load generator against one server. */
  private record Phase(String name, String label, String target, LoadGenerator.Mode mode, double rate,
                       double warmupSeconds, double durationSeconds) {}

  public static void main(String[] args) throws Exception {
    Bench.main(args, "commands", Options::parse, CommandBenchmark::run, CommandBenchmark::table);
  }

  private static void run(Options options, Bench.Run run) throws Exception {
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
    run.json.put("settings", settings);
    run.announce(String.format("%d clients, %d orders each", options.clients(), options.ordersPerClient()));

    run.withBroker(broker -> {
      List<Map<String, Object>> phases = new ArrayList<>();
      run.json.put("phases", phases);
      Map<String, String> env = Bench.nodeEnv(APP, run.workDir.resolve("kfold"), broker.bootstrap());
      Vertx nodeVertx = Vertx.vertx();
      BareServer bare = BareServer.launch();
      try {
        KfoldNode node = KfoldNode.start(nodeVertx, KfoldConfig.load(env)).await(120, TimeUnit.SECONDS);
        try {
          awaitCaughtUp(node.progress(), 60);
          System.out.printf("kfold node on port %d, bare server on port %d%n", node.httpPort(), bare.port());
          Runner runner = new Runner(options, run.workDir, broker.pid(), node, bare.port(), run.problems);

          Map<String, Object> bareClosed = runner.run(new Phase("bare-closed", "bare server, closed loop", "bare",
              LoadGenerator.Mode.CLOSED, 0, options.warmupSeconds(), options.durationSeconds()));
          phases.add(bareClosed);
          if (options.kfoldWarmupSeconds() > 0) {
            // Not in the table: a closed loop on kfold alone, so that the measured phases meet a warm node.
            run.json.put("kfoldWarmup", runner.run(new Phase("kfold-warmup", "kfold warm-up, closed loop", "kfold",
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
          run.json.put("summary", summary);
          run.json.put("effectWorkers", Bench.get(node.httpPort(), "/v1/_effects"));
          run.json.put("foldAtEnd", Map.of("applied", node.progress().applied.sum(),
              "conflicts", node.progress().conflicts.sum(), "duplicates", node.progress().duplicates.sum(),
              "deadLettered", node.progress().deadLettered.sum()));
        } finally {
          node.stop().await(120, TimeUnit.SECONDS);
        }
      } finally {
        bare.close();
        nodeVertx.close().await(60, TimeUnit.SECONDS);
      }
    });
  }

  /** Runs the phases: one load generator JVM each, with the server side metered meanwhile. */
  private record Runner(Options options, Path workDir, long brokerPid, KfoldNode node, int barePort,
                        List<String> problems) {

    Map<String, Object> run(Phase phase) throws Exception {
      boolean kfold = phase.target().equals("kfold");
      int port = kfold ? node.httpPort() : barePort;
      Bench.settle();
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

  static String table(Map<String, Object> run) {
    String format = "%-40s %10s %9s %9s %9s %9s %8s%n";
    StringBuilder out = new StringBuilder();
    Map<?, ?> settings = (Map<?, ?>) run.get("settings");
    out.append(String.format(format, "phase (" + settings.get("clients") + " clients)", "req/s", "p50 ms", "p99 ms",
        "p99.9 ms", "max ms", "non-200"));
    for (Map<String, Object> phase : Bench.list(run, "phases")) {
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
