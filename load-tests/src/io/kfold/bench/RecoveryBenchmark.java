package io.kfold.bench;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * How long a node takes to rebuild a lost store, for a log of {@code events} events over {@code keys}
 * entities: restored from the changelog topic, against folding the whole events log again.
 *
 * <p>The run: one broker; the input produced once; a node folds it (the same measurement as the fold
 * benchmark's kfold phase), stops, and its store folder ({@code <dataDir>/store}) is deleted; a node
 * starts again on the same data folder and the same topics, restores its partitions from their
 * changelogs, and the clock runs from its start until it is caught up. Then the store is deleted
 * again and so is the changelog topic: the next node has nothing to restore from and folds the whole
 * log, the clock running until it has applied every event again. Its changes topic already holds
 * every change then, so that rebuild does not publish them a second time.
 *
 * <p>Usage: {@code load-tests/run.sh recovery [--events N] [--keys K] [--max-poll-records N]}; see
 * load-tests/README.md.
 */
public final class RecoveryBenchmark {

  private static final String APP = "recovery-bench";

  record Options(long events, int keys, int maxPollRecords) {

    static Options parse(Bench.Args args) {
      long events = 1_000_000;
      int keys = 100_000;
      String envMaxPoll = System.getenv("KFOLD_FOLD_MAX_POLL_RECORDS");
      int maxPollRecords = envMaxPoll == null || envMaxPoll.isBlank() ? 5_000 : Integer.parseInt(envMaxPoll.trim());
      while (args.next()) {
        switch (args.option()) {
          case "--events" -> events = Long.parseLong(args.value().replace("_", ""));
          case "--keys" -> keys = Integer.parseInt(args.value().replace("_", ""));
          case "--max-poll-records" -> maxPollRecords = Integer.parseInt(args.value());
          default -> args.common();
        }
      }
      if (keys < 1 || events % keys != 0) {
        // The state check needs every entity to end at the same version.
        throw new IllegalArgumentException("--keys " + keys + " must divide --events " + events);
      }
      return new Options(events, keys, maxPollRecords);
    }
  }

  public static void main(String[] args) throws Exception {
    Bench.main(args, "recovery", Options::parse, RecoveryBenchmark::run, RecoveryBenchmark::table);
  }

  private static void run(Options options, Bench.Run run) throws Exception {
    Input input = new Input(APP, options.events(), options.keys());
    Map<String, Object> settings = new LinkedHashMap<>();
    settings.put("events", options.events());
    settings.put("keys", options.keys());
    settings.put("partitions", Input.PARTITIONS);
    settings.put("valueBytes", Input.VALUE_BYTES);
    settings.put("kfoldMaxPollRecords", options.maxPollRecords());
    run.json.put("settings", settings);
    run.announce(String.format("%s, kfold max.poll.records %d", input.label(), options.maxPollRecords()));

    run.withBroker(broker -> {
      List<Map<String, Object>> phases = new ArrayList<>();
      run.json.put("phases", phases);
      try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap()))) {
        System.out.printf("%nproducing %s to %s ...%n", input.label(), input.topic);
        input.createTopic(admin);
        Map<String, Object> produce = input.produce(broker.bootstrap());
        run.json.put("produce", produce);
        System.out.printf("  produced in %.1f s (%,d events/s)%n", produce.get("seconds"), produce.get("eventsPerSecond"));
      }
      Path dataDir = run.workDir.resolve("kfold-" + APP);

      Bench.settle();
      System.out.printf("  first fold, on an empty data folder ...%n");
      phases.add(phase("first fold", KfoldRun.inOwnJvm(broker.bootstrap(), input, options.maxPollRecords(), true,
          dataDir, broker.pid(), null, false, run.workDir)));

      // The node has stopped and closed its store: what is lost is exactly what a lost disk would lose.
      Path store = dataDir.resolve("store");
      long storeBytes = size(store);
      Bench.deleteTree(store);
      run.json.put("storeBytesAfterFirstFold", storeBytes);
      System.out.printf("  deleted the store (%,d MB on disk)%n", storeBytes / 1_000_000);

      Bench.settle();
      System.out.printf("  restore, from the changelog ...%n");
      phases.add(phase("restore", KfoldRun.inOwnJvm(broker.bootstrap(), input, options.maxPollRecords(), true,
          dataDir, broker.pid(), null, true, run.workDir)));
      run.json.put("restoreSeconds", phases.get(1).get("secondsToCaughtUp"));
      long restoredBytes = size(store);
      run.json.put("storeBytesAfterRestore", restoredBytes);
      System.out.printf("  the restored store: %,d MB on disk%n", restoredBytes / 1_000_000);

      Bench.deleteTree(store);
      try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap()))) {
        String changelog = APP + "." + Input.TYPE + ".changelog";
        admin.deleteTopics(List.of(changelog)).all().get();
        while (admin.listTopics().names().get().contains(changelog)) {
          Thread.sleep(100);
        }
        System.out.printf("  deleted the store and %s%n", changelog);
      }
      Bench.settle();
      System.out.printf("  rebuild, from the log ...%n");
      phases.add(phase("rebuild", KfoldRun.inOwnJvm(broker.bootstrap(), input, options.maxPollRecords(), true,
          dataDir, broker.pid(), null, false, run.workDir)));
      run.json.put("rebuildSeconds", phases.get(2).get("secondsToAllApplied"));
      System.out.printf("  restore from the changelog / rebuild from the log: %.2f%n",
          ((Number) phases.get(1).get("secondsToCaughtUp")).doubleValue()
              / ((Number) phases.get(2).get("secondsToAllApplied")).doubleValue());
      // The rebuilt store should be about the size of the first: anything it keeps that the first did
      // not (such as outbox records of changes found already published) shows here.
      long rebuiltBytes = size(store);
      run.json.put("storeBytesAfterRebuild", rebuiltBytes);
      System.out.printf("  the rebuilt store: %,d MB on disk%n", rebuiltBytes / 1_000_000);
    });
  }

  private static Map<String, Object> phase(String name, Map<String, Object> kfold) {
    Map<String, Object> phase = new LinkedHashMap<>();
    phase.put("phase", name);
    phase.putAll(kfold);
    Map<?, ?> resources = (Map<?, ?>) kfold.get("resources");
    System.out.printf("  %s: all %,d events applied after %.2f s (%,d events/s), caught up after %.2f s; node RSS"
        + " peak %s MiB, at end %s MiB%n", name, kfold.get("events"), kfold.get("secondsToAllApplied"),
        kfold.get("eventsPerSecond"), kfold.get("secondsToCaughtUp"), orDash(resources.get("benchJvmPeakRssMiB")),
        orDash(resources.get("benchJvmRssMiB")));
    return phase;
  }

  private static String table(Map<String, Object> run) {
    String format = "%-12s %14s %12s %12s %12s %14s %14s%n";
    StringBuilder out = new StringBuilder();
    out.append(String.format(format, "phase", "all applied", "events/s", "first event", "caught up", "node peak RSS",
        "node RSS at end"));
    out.append(String.format(format, "", "s", "", "s", "s", "MiB", "MiB"));
    for (Map<String, Object> phase : Bench.list(run, "phases")) {
      Map<?, ?> resources = (Map<?, ?>) phase.get("resources");
      out.append(String.format(format,
          phase.get("phase"),
          String.format("%.2f", ((Number) phase.get("secondsToAllApplied")).doubleValue()),
          String.format("%,d", ((Number) phase.get("eventsPerSecond")).longValue()),
          String.format("%.2f", ((Number) phase.get("secondsToFirstApplied")).doubleValue()),
          String.format("%.2f", ((Number) phase.get("secondsToCaughtUp")).doubleValue()),
          orDash(resources.get("benchJvmPeakRssMiB")),
          orDash(resources.get("benchJvmRssMiB"))));
    }
    return out.toString();
  }

  /** Memory figures exist on Linux only. */
  private static String orDash(Object value) {
    return value == null ? "-" : value.toString();
  }

  private static long size(Path root) throws IOException {
    try (Stream<Path> paths = Files.walk(root)) {
      return paths.filter(Files::isRegularFile).mapToLong(path -> path.toFile().length()).sum();
    }
  }
}
