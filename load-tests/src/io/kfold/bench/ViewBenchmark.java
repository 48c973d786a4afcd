package io.kfold.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.kfold.KfoldConfig;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

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
 * <p>Usage: {@code load-tests/run.sh views [--orders N] [--streams G[,G]|none] [--max-poll-records N]};
 * see load-tests/README.md.
 */
public final class ViewBenchmark {

  private static final String APP = "views-bench";
  /** The shipment-request worker of the default configuration would call out for every paid order. */
  private static final Map<String, String> NODE_ENV = Map.of("KFOLD_EFFECTS_SHIPMENT_REQUEST_ENABLED", "false");
  private static final long STREAMS_TIMEOUT_SECONDS = 1_000;
  static final double GOAL_VIEWS_TO_ALONE = 0.8;
  static final double GOAL_VIEWS_TO_STREAMS = 1.5;

  record Options(long orders, int maxPollRecords, List<String> streams, String streamsClasspath) {

    static Options parse(Bench.Args args) {
      long orders = 200_000;
      String envMaxPoll = System.getenv("KFOLD_FOLD_MAX_POLL_RECORDS");
      int maxPollRecords = envMaxPoll == null || envMaxPoll.isBlank() ? 5_000 : Integer.parseInt(envMaxPoll.trim());
      List<String> streams = List.of("exactly_once_v2");
      String streamsClasspath = null;
      while (args.next()) {
        switch (args.option()) {
          case "--orders" -> orders = Long.parseLong(args.value().replace("_", ""));
          case "--max-poll-records" -> maxPollRecords = Integer.parseInt(args.value());
          case "--streams" -> {
            String value = args.value().trim();
            streams = value.equals("none") ? List.of() : List.of(value.split("\\s*,\\s*"));
          }
          case "--streams-classpath" -> streamsClasspath = args.value();
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
      return new Options(orders, maxPollRecords, streams, streamsClasspath);
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
        + " without its views");
    run.json.put("settings", settings);
    run.announce(alone.label() + "; Kafka Streams " + (options.streams().isEmpty() ? "skipped"
        : String.join(", ", options.streams())));

    ObjectNode config = defaultConfig();
    boolean viewsDeclared = config.path("views").isArray() && !config.path("views").isEmpty();
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
      env.put("KFOLD_CONFIG", writeWithoutViews(config, run.workDir.resolve("kfold-no-views.yaml")).toString());
      Path aloneDir = run.workDir.resolve("kfold-noviews");
      Map<String, Object> foldAlone = KfoldRun.inOwnJvm(broker.bootstrap(), alone, env, false,
          options.maxPollRecords(), aloneDir, broker.pid(), run.workDir);
      Bench.deleteTree(aloneDir);
      run.json.put("foldAlone", foldAlone);
      System.out.printf("  %,d events/s (first event applied after %.2f s, all after %.2f s)%n",
          foldAlone.get("eventsPerSecond"), foldAlone.get("secondsToFirstApplied"),
          foldAlone.get("secondsToAllApplied"));

      Bench.settle();
      Map<String, Object> foldViews = foldWithViews(options, withViews, viewsDeclared, broker.bootstrap(),
          broker.pid(), run.workDir);
      run.json.put("foldWithViews", foldViews);

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
                                                   String bootstrap, long brokerPid, Path workDir) throws Exception {
    if (!viewsDeclared) {
      System.out.printf("%nkfold with views: views not built on this branch (the default configuration declares"
          + " none)%n");
      Map<String, Object> result = new LinkedHashMap<>();
      result.put("built", false);
      result.put("reason", "views not built on this branch");
      return result;
    }
    System.out.printf("%nkfold folding the orders with the default configuration's views, in a JVM of its own ...%n");
    Path dataDir = workDir.resolve("kfold-views");
    Map<String, Object> result = new LinkedHashMap<>();
    result.put("built", true);
    result.putAll(KfoldRun.inOwnJvm(bootstrap, input, NODE_ENV, true, options.maxPollRecords(), dataDir, brokerPid,
        workDir));
    Bench.deleteTree(dataDir);
    System.out.printf("  %,d events/s (first event applied after %.2f s, all after %.2f s)%n",
        result.get("eventsPerSecond"), result.get("secondsToFirstApplied"), result.get("secondsToAllApplied"));
    return result;
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

  /** kfold's default configuration, the copy built into its classes. */
  private static ObjectNode defaultConfig() throws IOException {
    try (InputStream in = KfoldConfig.class.getResourceAsStream("/kfold.yaml")) {
      if (in == null) {
        throw new IllegalStateException("kfold.yaml is not on the classpath: build kfold first");
      }
      return (ObjectNode) new ObjectMapper(new YAMLFactory()).readTree(in);
    }
  }

  /** The default configuration without its views: the fold alone. */
  private static Path writeWithoutViews(ObjectNode config, Path file) throws IOException {
    ObjectNode copy = config.deepCopy();
    copy.remove("views");
    Files.createDirectories(file.getParent());
    new ObjectMapper(new YAMLFactory()).writeValue(file.toFile(), copy);
    return file;
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
    out.append(String.format("row GET p99 next to entity GET p99: not measured yet%n"));
    return out.toString();
  }

  private static long number(Map<String, Object> map, String name) {
    return ((Number) map.get(name)).longValue();
  }

}
