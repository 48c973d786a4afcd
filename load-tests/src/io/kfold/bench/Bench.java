package io.kfold.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.kfold.log.LocalBroker;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Stream;

/**
 * What the benchmarks share: the frame of a run (options, work folder, broker, table, results
 * file), the options that run.sh gives every benchmark, and a few small helpers.
 */
final class Bench {

  private static final DateTimeFormatter FILE_TIME = DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")
      .withZone(ZoneOffset.UTC);

  private Bench() {}

  /** A benchmark's own part of a run: it records what it measured in {@link Run#json}. */
  interface Body<O> {
    void run(O options, Run run) throws Exception;
  }

  /** What a benchmark makes of its results once they are written, such as a chart beside the file. */
  interface AfterWrite {
    void accept(Path file, Map<String, Object> json) throws Exception;
  }

  /** What a benchmark does with the run's broker. */
  interface WithBroker {
    void run(LocalBroker broker) throws Exception;
  }

  /**
   * The {@code main} of a benchmark called {@code name}: reads its options (exit 2 on a bad one),
   * runs it in a work folder (a temporary one of its own unless run.sh gives one), prints its table,
   * writes {@code <name>-<UTC time>.json} to the results folder and deletes its own work folder. If the
   * run noted problems, they are printed last and the exit code is 1: the file is still written, so
   * that the figures of a run that went wrong can be looked at.
   */
  static <O> void main(String[] args, String name, Function<Args, O> parse, Body<O> body,
                       Function<Map<String, Object>, String> table) throws Exception {
    main(args, name, parse, body, table, (file, json) -> {});
  }

  /** As above, and then hands the written file to {@code afterWrite}. */
  static <O> void main(String[] args, String name, Function<Args, O> parse, Body<O> body,
                       Function<Map<String, Object>, String> table, AfterWrite afterWrite) throws Exception {
    Args parsed = new Args(args);
    O options;
    try {
      options = parse.apply(parsed);
    } catch (IllegalArgumentException e) {
      System.err.println(e.getMessage());
      System.exit(2);
      return;
    }
    boolean ownWorkDir = parsed.workDir == null;
    Path workDir = ownWorkDir ? Files.createTempDirectory("kfold-" + name + "-bench-") : parsed.workDir;
    Instant date = Instant.now().truncatedTo(ChronoUnit.SECONDS);
    Run run = new Run(name, workDir, date, parsed.revision);
    try {
      body.run(options, run);
      System.out.println();
      System.out.print(table.apply(run.json));
      Path file = parsed.resultsDir.resolve(name + "-" + FILE_TIME.format(date) + ".json");
      Report.writeJson(file, run.json);
      System.out.println();
      System.out.println("written to " + file);
      afterWrite.accept(file, run.json);
      if (run.problems.isEmpty()) {
        LatestRun.write(parsed.resultsDir.resolveSibling("README.md"), name, file, run.json, table.apply(run.json));
      }
    } finally {
      if (ownWorkDir) {
        deleteTree(workDir);
      }
    }
    if (!run.problems.isEmpty()) {
      System.out.println();
      run.problems.forEach(p -> System.out.println("PROBLEM: " + p));
      System.exit(1);
    }
  }

  /**
   * A benchmark's command line, read one option at a time. A benchmark's parser handles its own
   * options and hands every other one to {@link #common()}, which knows those run.sh passes to all.
   */
  static final class Args {
    private final String[] args;
    private int at = -1;
    /** Null: the run makes a temporary one and deletes it at the end. */
    private Path workDir;
    private Path resultsDir = Path.of("load-tests", "results");
    private String revision = "unknown";

    private Args(String[] args) {
      this.args = args;
    }

    /** Moves to the next option; false after the last one. */
    boolean next() {
      return ++at < args.length;
    }

    String option() {
      return args[at];
    }

    /** The value that follows the current option, which it consumes. */
    String value() {
      String option = option();
      if (++at >= args.length) {
        throw new IllegalArgumentException(option + " needs a value");
      }
      return args[at];
    }

    /** The current option when it is none of the benchmark's own: one of run.sh's, or unknown. */
    void common() {
      switch (option()) {
        case "--work-dir" -> workDir = Path.of(value());
        case "--results-dir" -> resultsDir = Path.of(value());
        case "--revision" -> revision = value();
        default -> throw new IllegalArgumentException("unknown option " + option() + " (see load-tests/README.md)");
      }
    }
  }

  /** One run of a benchmark: its work folder, what its results file will hold, and what went wrong. */
  static final class Run {
    final String name;
    final Path workDir;
    /** The results file. It starts with the date, the machine, the revision and the load average. */
    final Map<String, Object> json = new LinkedHashMap<>();
    /** Found wrong without stopping the run; see {@link Bench#main}. */
    final List<String> problems = new ArrayList<>();
    private final Map<String, Object> machine = Report.machine();

    private Run(String name, Path workDir, Instant date, String revision) {
      this.name = name;
      this.workDir = workDir;
      json.put("date", date.toString());
      json.put("machine", machine);
      json.put("revision", revision);
      json.put("loadAverageAtStart", Report.loadAverage());
    }

    /** The first line on the console: the machine, then what this benchmark is set to. */
    void announce(String setup) {
      System.out.printf("%s benchmark: %s, %d cores, Java %s; %s%n", name, machine.get("cpu"), machine.get("nproc"),
          machine.get("java"), setup);
    }

    /**
     * Starts the run's one local broker in the work folder, runs {@code body} against it and stops it.
     * Before and after, it records how many other Kafka brokers run on the machine: on two cores a
     * second broker halves every figure.
     */
    void withBroker(WithBroker body) throws Exception {
      long others = Report.otherBrokers(-1);  // ours is not started yet
      json.put("otherBrokersAtStart", others);
      if (others > 0) {
        System.out.printf("WARNING: %d other Kafka broker(s) running on this machine; figures will be low%n", others);
      }
      long brokerStart = System.nanoTime();
      LocalBroker broker = LocalBroker.start(workDir.resolve("broker"), LocalBroker.defaultLibs(), 0);
      // Ctrl-C must not leave a broker behind: it is a separate process and outlives this JVM.
      Thread stopBroker = new Thread(broker::close, "stop-bench-broker");
      Runtime.getRuntime().addShutdownHook(stopBroker);
      try {
        System.out.printf("broker pid %d on %s, ready in %.1f s%n", broker.pid(), broker.bootstrap(),
            (System.nanoTime() - brokerStart) / 1e9);
        body.run(broker);
      } finally {
        broker.close();
        try {
          Runtime.getRuntime().removeShutdownHook(stopBroker);
        } catch (IllegalStateException shuttingDown) {
          // the hook runs anyway
        }
      }
      long othersAtEnd = Report.otherBrokers(broker.pid());
      json.put("otherBrokersAtEnd", othersAtEnd);
      if (othersAtEnd > 0 && others == 0) {
        System.out.printf("WARNING: %d other Kafka broker(s) started during the run; figures may be low%n",
            othersAtEnd);
      }
    }
  }

  /**
   * The configuration every benchmark gives its node, as environment variables: its app, a data
   * folder of the run, a free HTTP port, the run's broker and the input's partitions. A benchmark
   * adds its own to the map.
   */
  static Map<String, String> nodeEnv(String app, Path dataDir, String bootstrap) {
    Map<String, String> env = new HashMap<>();
    env.put("KFOLD_APP", app);
    env.put("KFOLD_DATA_DIR", dataDir.toString());
    env.put("KFOLD_HTTP_PORT", "0");
    env.put("KFOLD_KAFKA_BOOTSTRAP", bootstrap);
    env.put("KFOLD_KAFKA_PARTITIONS", Integer.toString(Input.PARTITIONS));
    return env;
  }

  /** A small read of the node's own API, for the record: a failure is recorded, not thrown. */
  static Object get(int port, String path) {
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

  /**
   * Lets the broker finish flushing what the last phase wrote and collects this JVM's garbage, so
   * that one phase's leftovers are not billed to the next.
   */
  static void settle() throws InterruptedException {
    System.gc();
    Thread.sleep(2_000);
  }

  /** A list of JSON objects in the run's results, such as its inputs or its phases. */
  @SuppressWarnings("unchecked")
  static List<Map<String, Object>> list(Map<String, Object> json, String name) {
    return (List<Map<String, Object>>) json.get(name);
  }

  /** Deletes a folder and all it holds; nothing if it is not there. */
  static void deleteTree(Path root) throws IOException {
    if (!Files.exists(root)) {
      return;
    }
    try (Stream<Path> paths = Files.walk(root)) {
      for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(path);
      }
    }
  }
}
