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
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * Fold throughput of kfold next to the rate at which a plain consumer merely reads the same log, and
 * next to a Kafka Streams app that folds it into a RocksDB store the usual Streams way.
 *
 * <p>All read the same records from the same broker in the same run, one after the other, so the
 * ratios between them hold even where the absolute figures depend on the machine. The input is
 * produced once per input and the broker is started once: neither is part of any figure.
 *
 * <p>Usage: {@code load-tests/run.sh [--many-keys] [--events N] [--keys K[,K...]] [--max-poll-records N]
 * [--rounds N] [--streams G[,G...]|none] [--jfr]}; see load-tests/README.md.
 */
public final class FoldBenchmark {

  record Options(long events, List<Integer> keys, int rounds, int maxPollRecords, List<String> streams,
                 String streamsClasspath, boolean jfr, Path jfrDir) {

    static Options parse(Bench.Args args) {
      long events = 1_000_000;
      List<Integer> keys = new ArrayList<>(List.of(10_000));
      int rounds = 1;
      String envMaxPoll = System.getenv("KFOLD_FOLD_MAX_POLL_RECORDS");
      int maxPollRecords = envMaxPoll == null || envMaxPoll.isBlank() ? 5_000 : Integer.parseInt(envMaxPoll.trim());
      List<String> streams = StreamsRun.GUARANTEES;
      String streamsClasspath = null;
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
          case "--rounds" -> rounds = Integer.parseInt(args.value());
          case "--max-poll-records" -> maxPollRecords = Integer.parseInt(args.value());
          case "--streams" -> {
            String value = args.value().trim();
            streams = value.equals("none") ? List.of() : List.of(value.split("\\s*,\\s*"));
          }
          case "--streams-classpath" -> streamsClasspath = args.value();
          case "--jfr" -> jfr = true;
          case "--jfr-dir" -> jfrDir = Path.of(args.value());
          default -> args.common();
        }
      }
      if (rounds < 1) {
        throw new IllegalArgumentException("--rounds must be at least 1, not " + rounds);
      }
      for (int k : keys) {
        if (k < 1 || events % k != 0) {
          // Every entity must get the same number of events, or the state check cannot know the last version.
          throw new IllegalArgumentException("--keys " + k + " must divide --events " + events);
        }
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
      return new Options(events, List.copyOf(keys), rounds, maxPollRecords, streams, streamsClasspath, jfr, jfrDir);
    }
  }

  public static void main(String[] args) throws Exception {
    Bench.main(args, "fold", Options::parse, FoldBenchmark::run, FoldBenchmark::table,
        FoldChart::drawBeside);
  }

  private static void run(Options options, Bench.Run run) throws Exception {
    Map<String, Object> settings = new LinkedHashMap<>();
    settings.put("partitions", Input.PARTITIONS);
    settings.put("valueBytes", Input.VALUE_BYTES);
    settings.put("rawMaxPollRecords", RawConsumerRun.MAX_POLL_RECORDS);
    settings.put("kfoldMaxPollRecords", options.maxPollRecords());
    settings.put("rounds", options.rounds());
    settings.put("streamsGuarantees", options.streams());
    run.json.put("settings", settings);
    run.announce(String.format("kfold max.poll.records %d; Kafka Streams %s", options.maxPollRecords(),
        options.streams().isEmpty() ? "skipped" : String.join(", ", options.streams())));

    run.withBroker(broker -> {
      List<Map<String, Object>> results = new ArrayList<>();
      run.json.put("inputs", results);
      try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap()))) {
        for (int keys : options.keys()) {
          // Each round folds an input of its own (the same events, its own topics and groups), every
          // reader in a cold JVM: the spread of the ratios from round to round shows what one is worth.
          for (int round = 1; round <= options.rounds(); round++) {
            Input input = options.rounds() == 1 ? new Input(options.events(), keys)
                : new Input("fold-bench-k" + keys + "-r" + round, options.events(), keys);
            Map<String, Object> result = runInput(options, input, broker, admin, run.workDir);
            if (options.rounds() > 1) {
              result.put("round", round);
              result.put("label", input.label() + ", round " + round);
            }
            results.add(result);
          }
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
    Path jfrFile = null;
    if (options.jfr()) {
      Files.createDirectories(options.jfrDir());
      jfrFile = options.jfrDir().resolve("fold-k" + input.keys + ".jfr").toAbsolutePath();
    }
    System.out.printf("  kfold folding (max.poll.records %d), in a JVM of its own ...%n", options.maxPollRecords());
    Map<String, Object> kfold = KfoldRun.inOwnJvm(broker.bootstrap(), input, options.maxPollRecords(), true,
        workDir.resolve("kfold-" + input.app), broker.pid(), jfrFile, workDir);
    result.put("kfold", kfold);
    System.out.printf("  kfold: %,d events/s (first event applied after %.2f s, all after %.2f s)%n",
        kfold.get("eventsPerSecond"), kfold.get("secondsToFirstApplied"), kfold.get("secondsToAllApplied"));
    if (jfrFile != null) {
      System.out.printf("  flight recording of the kfold run: %s%n", jfrFile);
    }

    double kfoldRate = rate(kfold);
    result.put("ratio", Report.round(kfoldRate / rate(raw), 3));

    // The cost of zombie fencing: the same fold without transactions, on a copy of the input of
    // its own (a fold on the same topic would restore from the first one's changelog instead).
    Input copy = new Input(input.app + "-notx", input.events, input.keys);
    copy.createTopic(admin);
    copy.produce(broker.bootstrap());
    Bench.settle();
    System.out.printf("  kfold folding without transactions (fold.transactions=false), in a JVM of its own ...%n");
    Map<String, Object> plain = KfoldRun.inOwnJvm(broker.bootstrap(), copy, options.maxPollRecords(), false,
        workDir.resolve("kfold-" + copy.app), broker.pid(), null, workDir);
    result.put("kfoldNoTransactions", plain);
    result.put("transactionsRatio", Report.round(kfoldRate / rate(plain), 3));
    System.out.printf("  kfold without transactions: %,d events/s; with/without %.3f%n", plain.get("eventsPerSecond"),
        kfoldRate / rate(plain));

    Map<String, Object> streams = new LinkedHashMap<>();
    Map<String, Object> kfoldToStreams = new LinkedHashMap<>();
    for (String guarantee : options.streams()) {
      Bench.settle();
      System.out.printf("  Kafka Streams (%s) folding, in a JVM of its own ...%n", guarantee);
      Map<String, Object> streamsRun = StreamsRun.run(options.streamsClasspath(), broker.bootstrap(), input,
          guarantee, workDir, broker.pid());
      streams.put(guarantee, streamsRun);
      kfoldToStreams.put(guarantee, Report.round(kfoldRate / rate(streamsRun), 3));
      System.out.printf("  Kafka Streams (%s): %,d events/s (first reduce after %.2f s, all after %.2f s, offsets"
              + " committed after %.2f s; %,d events/s after the first reduce)%n",
          guarantee, Math.round(rate(streamsRun)), number(streamsRun, "secondsToFirstReduce"),
          number(streamsRun, "secondsToAllProcessed"), number(streamsRun, "secondsToCommitted"),
          Math.round(number(streamsRun, "eventsPerSecondFirstReduceToLast")));
    }
    if (!streams.isEmpty()) {
      result.put("streams", streams);
      result.put("kfoldToStreams", kfoldToStreams);
    }
    return result;
  }

  /** The events/s of a reader's results, whether they were measured here or read from the Streams JVM's file. */
  static double rate(Map<?, ?> reader) {
    return number(reader, "eventsPerSecond");
  }

  private static double number(Map<?, ?> map, String name) {
    return ((Number) map.get(name)).doubleValue();
  }

  private static String table(Map<String, Object> run) {
    List<String> guarantees = Bench.list(run, "inputs").stream()
        .flatMap(input -> input.containsKey("streams") ? ((Map<?, ?>) input.get("streams")).keySet().stream()
            : Stream.empty())
        .map(String::valueOf).distinct().toList();
    int labelWidth = Math.max(30, Bench.list(run, "inputs").stream()
        .mapToInt(input -> String.valueOf(input.get("label")).length()).max().orElse(0));
    StringBuilder header = new StringBuilder("%-" + labelWidth + "s %13s %11s %13s %12s");
    guarantees.forEach(g -> header.append(" %15s"));
    header.append(" %9s");
    guarantees.forEach(g -> header.append(" %20s"));
    header.append(" %11s %12s%n");
    String format = header.toString();

    List<Object> names = new ArrayList<>(List.of("input", "raw consumer", "kfold fold", "kfold no txn", "txn/no txn"));
    List<Object> units = new ArrayList<>(List.of("", "events/s", "events/s", "events/s", ""));
    guarantees.forEach(g -> {
      names.add("Streams " + StreamsRun.shortName(g));
      units.add("events/s");
    });
    names.add("kfold/raw");
    units.add("");
    guarantees.forEach(g -> {
      names.add("kfold/Streams " + StreamsRun.shortName(g));
      units.add("");
    });
    names.addAll(List.of("first event", "kfold steady"));
    units.addAll(List.of("s (kfold)", "events/s"));

    StringBuilder out = new StringBuilder();
    out.append(String.format(format, names.toArray()));
    out.append(String.format(format, units.toArray()));
    for (Map<String, Object> input : Bench.list(run, "inputs")) {
      Map<?, ?> raw = (Map<?, ?>) input.get("raw");
      Map<?, ?> kfold = (Map<?, ?>) input.get("kfold");
      Map<?, ?> streams = (Map<?, ?>) input.getOrDefault("streams", Map.of());
      Map<?, ?> ratios = (Map<?, ?>) input.getOrDefault("kfoldToStreams", Map.of());
      List<Object> row = new ArrayList<>();
      row.add(input.get("label"));
      row.add(String.format("%,d", Math.round(rate(raw))));
      row.add(String.format("%,d", Math.round(rate(kfold))));
      Map<?, ?> plain = (Map<?, ?>) input.get("kfoldNoTransactions");
      row.add(plain == null ? "-" : String.format("%,d", Math.round(rate(plain))));
      row.add(plain == null ? "-" : String.format("%.3f", number(input, "transactionsRatio")));
      guarantees.forEach(g -> row.add(streams.containsKey(g)
          ? String.format("%,d", Math.round(rate((Map<?, ?>) streams.get(g)))) : "-"));
      row.add(String.format("%.3f", number(input, "ratio")));
      guarantees.forEach(g -> row.add(ratios.containsKey(g) ? String.format("%.3f", number(ratios, g)) : "-"));
      row.add(String.format("%.2f", number(kfold, "secondsToFirstApplied")));
      row.add(kfold.get("eventsPerSecondFirstToLast") == null ? "-"
          : String.format("%,d", ((Number) kfold.get("eventsPerSecondFirstToLast")).longValue()));
      out.append(String.format(format, row.toArray()));
    }
    Bench.list(run, "inputs").stream().filter(input -> input.containsKey("round"))
        .collect(Collectors.groupingBy(input -> input.get("keys"), LinkedHashMap::new, Collectors.toList()))
        .forEach((keys, rounds) -> {
          out.append(String.format("%,d keys, median of %d rounds: kfold/raw %.3f, transactions/none %.3f", keys,
              rounds.size(), median(rounds.stream().map(input -> number(input, "ratio")).toList()),
              median(rounds.stream().map(input -> number(input, "transactionsRatio")).toList())));
          guarantees.forEach(g -> out.append(String.format(", kfold/Streams %s %.3f", StreamsRun.shortName(g),
              median(rounds.stream().map(input -> number((Map<?, ?>) input.get("kfoldToStreams"), g)).toList()))));
          out.append(String.format("%n"));
        });
    return out.toString();
  }

  private static double median(List<Double> values) {
    List<Double> sorted = values.stream().sorted().toList();
    int middle = sorted.size() / 2;
    return sorted.size() % 2 == 1 ? sorted.get(middle) : (sorted.get(middle - 1) + sorted.get(middle)) / 2;
  }
}
