package io.kfold.bench;

import io.kfold.log.LocalBroker;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Fold throughput of kfold next to the rate at which a plain consumer merely reads the same log.
 *
 * <p>Both read the same records from the same broker in the same run, one after the other, so the
 * ratio between them holds even where the absolute figures depend on the machine. The input is
 * produced once per input and the broker is started once: neither is part of any figure.
 *
 * <p>Usage: {@code load-tests/run.sh [--many-keys] [--events N] [--keys K[,K...]] [--max-poll-records N]
 * [--jfr]}; see load-tests/README.md.
 */
public final class FoldBenchmark {

  static final DateTimeFormatter FILE_TIME = DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")
      .withZone(ZoneOffset.UTC);

  record Options(long events, List<Integer> keys, int maxPollRecords, Path workDir, Path resultsDir, boolean jfr,
                 Path jfrDir, String revision) {

    static Options parse(String[] args) {
      long events = 1_000_000;
      List<Integer> keys = new ArrayList<>(List.of(10_000));
      String envMaxPoll = System.getenv("KFOLD_FOLD_MAX_POLL_RECORDS");
      int maxPollRecords = envMaxPoll == null || envMaxPoll.isBlank() ? 5_000 : Integer.parseInt(envMaxPoll.trim());
      Path workDir = null;
      Path resultsDir = Path.of("load-tests", "results");
      boolean jfr = false;
      Path jfrDir = Path.of(".");
      String revision = "unknown";
      for (int i = 0; i < args.length; i++) {
        String arg = args[i];
        switch (arg) {
          case "--events" -> events = Long.parseLong(value(args, ++i, arg).replace("_", ""));
          case "--keys" -> {
            keys.clear();
            for (String k : value(args, ++i, arg).split(",")) {
              keys.add(Integer.parseInt(k.trim().replace("_", "")));
            }
          }
          case "--many-keys" -> {
            if (!keys.contains(200_000)) {
              keys.add(200_000);
            }
          }
          case "--max-poll-records" -> maxPollRecords = Integer.parseInt(value(args, ++i, arg));
          case "--work-dir" -> workDir = Path.of(value(args, ++i, arg));
          case "--results-dir" -> resultsDir = Path.of(value(args, ++i, arg));
          case "--jfr" -> jfr = true;
          case "--jfr-dir" -> jfrDir = Path.of(value(args, ++i, arg));
          case "--revision" -> revision = value(args, ++i, arg);
          default -> throw new IllegalArgumentException("unknown option " + arg + " (see load-tests/README.md)");
        }
      }
      for (int k : keys) {
        if (k < 1 || events % k != 0) {
          // Every entity must get the same number of events, or the state check cannot know the last version.
          throw new IllegalArgumentException("--keys " + k + " must divide --events " + events);
        }
      }
      return new Options(events, List.copyOf(keys), maxPollRecords, workDir, resultsDir, jfr, jfrDir, revision);
    }

    private static String value(String[] args, int i, String option) {
      if (i >= args.length) {
        throw new IllegalArgumentException(option + " needs a value");
      }
      return args[i];
    }
  }

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
    Path workDir = ownWorkDir ? Files.createTempDirectory("kfold-fold-bench-") : options.workDir();
    Instant date = Instant.now().truncatedTo(ChronoUnit.SECONDS);
    try {
      Map<String, Object> run = run(options, workDir, date);
      System.out.println();
      System.out.print(Report.table(castList(run.get("inputs"))));
      Path file = options.resultsDir().resolve("fold-" + FILE_TIME.format(date) + ".json");
      Report.writeJson(file, run);
      System.out.println();
      System.out.println("written to " + file);
    } finally {
      if (ownWorkDir) {
        deleteTree(workDir);
      }
    }
  }

  private static Map<String, Object> run(Options options, Path workDir, Instant date) throws Exception {
    Map<String, Object> run = new LinkedHashMap<>();
    run.put("date", date.toString());
    Map<String, Object> machine = Report.machine();
    run.put("machine", machine);
    run.put("revision", options.revision());
    run.put("loadAverageAtStart", Report.loadAverage());
    Map<String, Object> settings = new LinkedHashMap<>();
    settings.put("partitions", Input.PARTITIONS);
    settings.put("valueBytes", Input.VALUE_BYTES);
    settings.put("rawMaxPollRecords", RawConsumerRun.MAX_POLL_RECORDS);
    settings.put("kfoldMaxPollRecords", options.maxPollRecords());
    run.put("settings", settings);

    System.out.printf("fold benchmark: %s, %d cores, Java %s; kfold max.poll.records %d%n",
        machine.get("cpu"), machine.get("nproc"), machine.get("java"), options.maxPollRecords());
    long others = Report.otherBrokers(-1);  // ours is not started yet
    run.put("otherBrokersAtStart", others);
    if (others > 0) {
      System.out.printf("WARNING: %d other Kafka broker(s) running on this machine; figures will be low%n", others);
    }

    long brokerStart = System.nanoTime();
    LocalBroker broker = LocalBroker.start(workDir.resolve("broker"), LocalBroker.defaultLibs(), 0);
    // Ctrl-C must not leave a broker behind: it is a separate process and outlives this JVM.
    Thread stopBroker = new Thread(broker::close, "stop-bench-broker");
    Runtime.getRuntime().addShutdownHook(stopBroker);
    List<Map<String, Object>> results = new ArrayList<>();
    run.put("inputs", results);
    try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap()))) {
      System.out.printf("broker pid %d on %s, ready in %.1f s%n", broker.pid(), broker.bootstrap(),
          (System.nanoTime() - brokerStart) / 1e9);
      for (int keys : options.keys()) {
        results.add(runInput(options, new Input(options.events(), keys), broker, admin, workDir));
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

  private static Map<String, Object> runInput(Options options, Input input, LocalBroker broker, Admin admin,
                                              Path workDir) throws Exception {
    Map<String, Object> result = new LinkedHashMap<>();
    result.put("label", input.label());
    result.put("events", input.events);
    result.put("keys", input.keys);
    result.put("topic", input.topic);

    System.out.printf("%n[%s] producing to %s ...%n", input.label(), input.topic);
    input.createTopic(admin);
    Map<String, Object> produce = input.produce(broker.bootstrap());
    result.put("produce", produce);
    System.out.printf("  produced in %.1f s (%,d events/s)%n", produce.get("seconds"), produce.get("eventsPerSecond"));

    settle();
    System.out.printf("  raw consumer reading ...%n");
    Map<String, Object> raw = RawConsumerRun.run(broker.bootstrap(), input, broker.pid());
    result.put("raw", raw);
    System.out.printf("  raw consumer: %,d events/s (first record after %.2f s)%n", raw.get("eventsPerSecond"),
        raw.get("secondsToFirstRecord"));

    settle();
    System.out.printf("  kfold folding (max.poll.records %d) ...%n", options.maxPollRecords());
    Path jfrFile = null;
    if (options.jfr()) {
      Files.createDirectories(options.jfrDir());
      jfrFile = options.jfrDir().resolve("fold-k" + input.keys + ".jfr").toAbsolutePath();
    }
    Map<String, Object> kfold = KfoldRun.run(broker.bootstrap(), input, options.maxPollRecords(),
        workDir.resolve("kfold-" + input.app), broker.pid(), jfrFile);
    result.put("kfold", kfold);
    System.out.printf("  kfold: %,d events/s (first event applied after %.2f s, all after %.2f s)%n",
        kfold.get("eventsPerSecond"), kfold.get("secondsToFirstApplied"), kfold.get("secondsToAllApplied"));
    if (jfrFile != null) {
      System.out.printf("  flight recording of the kfold run: %s%n", jfrFile);
    }

    result.put("ratio", Report.round(((Long) kfold.get("eventsPerSecond")).doubleValue()
        / ((Long) raw.get("eventsPerSecond")).doubleValue(), 3));
    return result;
  }

  /**
   * Lets the broker finish flushing what the last phase wrote and collects this JVM's garbage, so
   * that one phase's leftovers are not billed to the next.
   */
  static void settle() throws InterruptedException {
    System.gc();
    Thread.sleep(2_000);
  }

  @SuppressWarnings("unchecked")
  private static List<Map<String, Object>> castList(Object list) {
    return (List<Map<String, Object>>) list;
  }

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
