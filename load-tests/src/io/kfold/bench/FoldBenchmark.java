package io.kfold.bench;

import io.kfold.log.LocalBroker;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

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

  record Options(long events, List<Integer> keys, int maxPollRecords, boolean jfr, Path jfrDir) {

    static Options parse(Bench.Args args) {
      long events = 1_000_000;
      List<Integer> keys = new ArrayList<>(List.of(10_000));
      String envMaxPoll = System.getenv("KFOLD_FOLD_MAX_POLL_RECORDS");
      int maxPollRecords = envMaxPoll == null || envMaxPoll.isBlank() ? 5_000 : Integer.parseInt(envMaxPoll.trim());
      boolean jfr = false;
      Path jfrDir = Path.of(".");
      while (args.next()) {
        switch (args.option()) {
          case "--events" -> events = Long.parseLong(args.value().replace("_", ""));
          case "--keys" -> {
            keys.clear();
            for (String k : args.value().split(",")) {
              keys.add(Integer.parseInt(k.trim().replace("_", "")));
            }
          }
          case "--many-keys" -> {
            if (!keys.contains(200_000)) {
              keys.add(200_000);
            }
          }
          case "--max-poll-records" -> maxPollRecords = Integer.parseInt(args.value());
          case "--jfr" -> jfr = true;
          case "--jfr-dir" -> jfrDir = Path.of(args.value());
          default -> args.common();
        }
      }
      for (int k : keys) {
        if (k < 1 || events % k != 0) {
          // Every entity must get the same number of events, or the state check cannot know the last version.
          throw new IllegalArgumentException("--keys " + k + " must divide --events " + events);
        }
      }
      return new Options(events, List.copyOf(keys), maxPollRecords, jfr, jfrDir);
    }
  }

  public static void main(String[] args) throws Exception {
    Bench.main(args, "fold", Options::parse, FoldBenchmark::run, FoldBenchmark::table);
  }

  private static void run(Options options, Bench.Run run) throws Exception {
    Map<String, Object> settings = new LinkedHashMap<>();
    settings.put("partitions", Input.PARTITIONS);
    settings.put("valueBytes", Input.VALUE_BYTES);
    settings.put("rawMaxPollRecords", RawConsumerRun.MAX_POLL_RECORDS);
    settings.put("kfoldMaxPollRecords", options.maxPollRecords());
    run.json.put("settings", settings);
    run.announce(String.format("kfold max.poll.records %d", options.maxPollRecords()));

    run.withBroker(broker -> {
      List<Map<String, Object>> results = new ArrayList<>();
      run.json.put("inputs", results);
      try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap()))) {
        for (int keys : options.keys()) {
          results.add(runInput(options, new Input(options.events(), keys), broker, admin, run.workDir));
        }
      }
    });
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

    Bench.settle();
    System.out.printf("  raw consumer reading ...%n");
    Map<String, Object> raw = RawConsumerRun.run(broker.bootstrap(), input, broker.pid());
    result.put("raw", raw);
    System.out.printf("  raw consumer: %,d events/s (first record after %.2f s)%n", raw.get("eventsPerSecond"),
        raw.get("secondsToFirstRecord"));

    Bench.settle();
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

  private static String table(Map<String, Object> run) {
    String format = "%-34s %14s %14s %9s %12s %15s%n";
    StringBuilder out = new StringBuilder();
    out.append(String.format(format, "input", "raw consumer", "kfold fold", "kfold/raw", "first event", "kfold steady"));
    out.append(String.format(format, "", "events/s", "events/s", "", "s (kfold)", "events/s"));
    for (Map<String, Object> input : Bench.list(run, "inputs")) {
      Map<?, ?> raw = (Map<?, ?>) input.get("raw");
      Map<?, ?> kfold = (Map<?, ?>) input.get("kfold");
      out.append(String.format(format,
          input.get("label"),
          String.format("%,d", (Long) raw.get("eventsPerSecond")),
          String.format("%,d", (Long) kfold.get("eventsPerSecond")),
          String.format("%.3f", (Double) input.get("ratio")),
          String.format("%.2f", (Double) kfold.get("secondsToFirstApplied")),
          kfold.get("eventsPerSecondFirstToLast") == null ? "-"
              : String.format("%,d", (Long) kfold.get("eventsPerSecondFirstToLast"))));
    }
    return out.toString();
  }
}
