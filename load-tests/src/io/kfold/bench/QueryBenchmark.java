package io.kfold.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.bench.LoadGenerator.Workload;
import io.vertx.core.Vertx;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;

import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

/**
 * Queries of a secondary index ({@code GET /v1/orders?customer=<email>&limit=50}) on a store of many
 * orders, through one node and through three, each next to reads of one order by id
 * ({@code GET /v1/orders/<id>}) in the same run; and what the indexes cost the fold: the same orders
 * folded with the two default orders indexes and without them.
 *
 * <p>The run: {@code entities} orders (one {@code OrderPlaced} event each, {@code perCustomer} orders
 * per customer, see {@link OrderInput}) are produced twice, to the topics of two apps. A node in a JVM
 * of its own folds the first with the default configuration (indexes {@code customer} and
 * {@code status} on orders) without its views, then another folds the second with that
 * configuration minus the orders' indexes: their events/s and ratio. The shipped views are off
 * everywhere in this benchmark ({@code views: []}): they are the views benchmark's subject, and with
 * them on both folds the ratio would compare indexes and views with views alone. Then nodes in this JVM serve the queries: first the node that
 * folded with indexes, reopening its store, alone; then two more nodes join its group, take their
 * partitions from the changelog (the index entries are rebuilt from the restored states) and the
 * load is spread over the three. Per node count and concurrency, a closed loop of reads by id and
 * then one of queries, each from the {@link LoadGenerator}'s JVM, random ids and customers.
 *
 * <p>Before the loops through each node count, a few customers' queries are checked through every
 * node: 50 items of that customer on the first page, and all their orders, once, over the pages.
 *
 * <p>Usage: {@code load-tests/run.sh query [--entities N] [--per-customer N] [--limit N]
 * [--concurrencies 8,32] [--nodes 1,3] [--warmup S] [--duration S] [--warmup-phase S]
 * [--max-poll-records N] [--no-fold-baseline] [--jfr]}; see load-tests/README.md.
 */
public final class QueryBenchmark {

  private static final String APP = "query-bench";
  /** The shipment-request worker of the default configuration reads every order change; no query needs it. */
  private static final Map<String, String> NODE_ENV = Map.of("KFOLD_EFFECTS_SHIPMENT_REQUEST_ENABLED", "false");
  private static final long SETTLE_MILLIS = 1_000;
  /** A node joining is "quiet" once this JVM uses less than this many cores (restores and standbys done). */
  private static final double QUIET_CORES = 0.25;
  private static final long QUIET_MAX_SECONDS = 120;
  private static final int CHECKED_CUSTOMERS = 3;
  private static final long STARTED = System.nanoTime();

  record Options(long entities, int perCustomer, int limit, List<Integer> concurrencies, List<Integer> nodes,
                 double warmupSeconds, double durationSeconds, double warmupPhaseSeconds, int maxPollRecords,
                 boolean foldBaseline, boolean jfr, Path jfrDir) {

    static Options parse(Bench.Args args) {
      long entities = 1_000_000;
      int perCustomer = 64;
      int limit = 50;
      List<Integer> concurrencies = List.of(8, 32);
      List<Integer> nodes = List.of(1, 3);
      double warmup = 2;
      double duration = 10;
      double warmupPhase = 10;
      String envMaxPoll = System.getenv("KFOLD_FOLD_MAX_POLL_RECORDS");
      int maxPollRecords = envMaxPoll == null || envMaxPoll.isBlank() ? 5_000 : Integer.parseInt(envMaxPoll.trim());
      boolean foldBaseline = true;
      boolean jfr = false;
      Path jfrDir = Path.of(".");
      while (args.next()) {
        switch (args.option()) {
          case "--entities" -> entities = Long.parseLong(args.value().replace("_", ""));
          case "--per-customer" -> perCustomer = Integer.parseInt(args.value());
          case "--limit" -> limit = Integer.parseInt(args.value());
          case "--concurrencies" -> concurrencies = integers(args.value());
          case "--nodes" -> nodes = integers(args.value()).stream().sorted().toList();
          case "--warmup" -> warmup = Double.parseDouble(args.value());
          case "--duration" -> duration = Double.parseDouble(args.value());
          case "--warmup-phase" -> warmupPhase = Double.parseDouble(args.value());
          case "--max-poll-records" -> maxPollRecords = Integer.parseInt(args.value());
          case "--no-fold-baseline" -> foldBaseline = false;
          case "--jfr" -> jfr = true;
          case "--jfr-dir" -> jfrDir = Path.of(args.value());
          default -> args.common();
        }
      }
      if (entities < 1 || perCustomer < 1 || perCustomer > entities || limit < 1 || limit > 1000
          || concurrencies.isEmpty() || concurrencies.stream().anyMatch(c -> c < 1 || c > 1000) || nodes.isEmpty()
          || nodes.get(0) < 1 || nodes.get(nodes.size() - 1) > Input.PARTITIONS || duration <= 0) {
        throw new IllegalArgumentException("--entities, --per-customer (at most --entities), --duration positive;"
            + " --limit 1 to 1000; --concurrencies 1 to 1000 each; --nodes 1 to " + Input.PARTITIONS + " each");
      }
      return new Options(entities, perCustomer, limit, concurrencies, nodes, warmup, duration, warmupPhase,
          maxPollRecords, foldBaseline, jfr, jfrDir);
    }

    /** Where the flight recording of a fold goes, or null without {@code --jfr}. */
    Path jfrFile(String name) throws IOException {
      if (!jfr) {
        return null;
      }
      Files.createDirectories(jfrDir);
      return jfrDir.resolve(name + ".jfr").toAbsolutePath();
    }

    int customers() {
      return (int) Math.max(1, entities / perCustomer);
    }

    private static List<Integer> integers(String list) {
      return Arrays.stream(list.split(",")).map(String::trim).map(Integer::parseInt).toList();
    }
  }

  public static void main(String[] args) throws Exception {
    Bench.main(args, "query", Options::parse, QueryBenchmark::run, QueryBenchmark::table);
  }

  private static void run(Options options, Bench.Run run) throws Exception {
    Map<String, Object> settings = new LinkedHashMap<>();
    settings.put("entities", options.entities());
    settings.put("customers", options.customers());
    settings.put("ordersPerCustomer", options.perCustomer());
    settings.put("limit", options.limit());
    settings.put("concurrencies", options.concurrencies());
    settings.put("nodes", options.nodes());
    settings.put("warmupSeconds", options.warmupSeconds());
    settings.put("durationSeconds", options.durationSeconds());
    settings.put("warmupPhaseSeconds", options.warmupPhaseSeconds());
    settings.put("maxPollRecords", options.maxPollRecords());
    settings.put("partitions", Input.PARTITIONS);
    settings.put("configuration", "the default one built into kfold without its views (views: []),"
        + " shipment-request worker off; the fold baseline also without the orders indexes");
    settings.put("nodesRunIn", "the benchmark JVM, one Vert.x instance each; the load generator in a JVM of its own");
    run.json.put("settings", settings);
    run.announce(String.format("%,d orders of %,d customers (%d each), queries of %d at %s connections through %s"
            + " nodes", options.entities(), options.customers(), options.perCustomer(), options.limit(),
        options.concurrencies(), options.nodes()));

    run.withBroker(broker -> {
      OrderInput indexed = new OrderInput(APP, options.entities(), options.customers());
      OrderInput plain = new OrderInput(APP + "-noindex", options.entities(), options.customers());
      // Both inputs are written before either fold, so that both folds meet the broker in the same state.
      try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap()))) {
        for (OrderInput input : options.foldBaseline() ? List.of(indexed, plain) : List.of(indexed)) {
          System.out.printf("%nproducing %,d orders to %s ...%n", input.entities, input.topic);
          input.createTopic(admin);
          Map<String, Object> produced = input.produce(broker.bootstrap());
          run.json.put(input == indexed ? "produce" : "produceNoIndexes", produced);
          System.out.printf("  produced in %.1f s (%,d events/s)%n", produced.get("seconds"),
              produced.get("eventsPerSecond"));
        }
      }

      // The fold without indexes first: in runs with it second, the fold with indexes, first after the
      // inputs were produced, met a busier broker (twice its CPU) and started later (4.8-5.2 s to its
      // first event against 2.6-2.7 s).
      // The shipped views are off in both folds and in the nodes that answer the queries: with them the
      // comparison would be "indexes + views" against "views", and each order's change would also be
      // folded into two views' rows.
      ObjectNode noViews = DefaultConfig.withoutViews(DefaultConfig.read());
      Map<String, String> indexedEnv = new LinkedHashMap<>(NODE_ENV);
      indexedEnv.put("KFOLD_CONFIG",
          DefaultConfig.write(noViews, run.workDir.resolve("kfold-no-views.yaml")).toString());
      Path dataDir = run.workDir.resolve("kfold-1");
      Map<String, Object> fold = new LinkedHashMap<>();
      run.json.put("fold", fold);
      fold.put("order", options.foldBaseline() ? "without indexes, then with" : "with indexes only");
      Map<String, Object> off = null;
      if (options.foldBaseline()) {
        Bench.settle();
        Map<String, String> env = new LinkedHashMap<>(NODE_ENV);
        env.put("KFOLD_CONFIG", DefaultConfig.write(DefaultConfig.withoutIndexes(noViews, OrderInput.TYPE),
            run.workDir.resolve("kfold-no-indexes.yaml")).toString());
        System.out.printf("%nkfold folding the orders without indexes (a configuration whose orders declare none),"
            + " in a JVM of its own ...%n");
        Path plainDir = run.workDir.resolve("kfold-noindex");
        off = KfoldRun.inOwnJvm(broker.bootstrap(), plain, env, options.maxPollRecords(), plainDir, broker.pid(),
            options.jfrFile("query-fold-no-indexes"), run.workDir);
        fold.put("withoutIndexes", off);
        Bench.deleteTree(plainDir);  // the queries need only the indexed store
        System.out.printf("  without indexes: %,d events/s (first event applied after %.2f s, all after %.2f s)%n",
            off.get("eventsPerSecond"), off.get("secondsToFirstApplied"), off.get("secondsToAllApplied"));
      }
      Bench.settle();
      System.out.printf("%nkfold folding the same orders with the default indexes (customer, status), in a JVM of"
          + " its own ...%n");
      Map<String, Object> on = KfoldRun.inOwnJvm(broker.bootstrap(), indexed, indexedEnv, options.maxPollRecords(),
          dataDir, broker.pid(), options.jfrFile("query-fold-indexes"), run.workDir);
      fold.put("withIndexes", on);
      System.out.printf("  with indexes: %,d events/s (first event applied after %.2f s, all after %.2f s)%n",
          on.get("eventsPerSecond"), on.get("secondsToFirstApplied"), on.get("secondsToAllApplied"));
      if (off != null) {
        double ratio = FoldBenchmark.rate(on) / FoldBenchmark.rate(off);
        fold.put("onToOff", Report.round(ratio, 3));
        fold.put("goal", 0.9);
        fold.put("met", ratio >= 0.9);
        // From each fold's first applied event to its last: without the node's start.
        double steady = ((Number) on.get("eventsPerSecondFirstToLast")).doubleValue()
            / ((Number) off.get("eventsPerSecondFirstToLast")).doubleValue();
        fold.put("onToOffSteady", Report.round(steady, 3));
        System.out.printf("  with/without %.3f (goal >= 0.9); first to last event %.3f%n", ratio, steady);
      }

      List<Map<String, Object>> phases = new ArrayList<>();
      run.json.put("phases", phases);
      List<Map<String, Object>> warmups = new ArrayList<>();
      run.json.put("warmupPhases", warmups);
      run.json.put("checks", new ArrayList<>());
      List<Vertx> vertxes = new ArrayList<>();
      List<NodeRuntime> nodes = new ArrayList<>();
      try (HttpBenchmark.Generator generator = HttpBenchmark.Generator.start()) {
        for (int count : options.nodes()) {
          while (nodes.size() < count) {
            Vertx vertx = Vertx.vertx();
            vertxes.add(vertx);
            Map<String, String> env = Bench.nodeEnv(APP, run.workDir.resolve("kfold-" + (nodes.size() + 1)),
                broker.bootstrap());
            env.putAll(indexedEnv);
            long start = System.nanoTime();
            nodes.add(NodeRuntime.start(vertx, NodeConfig.load(env)).await(120, TimeUnit.SECONDS));
            System.out.printf("%nnode %d started on port %d in %.1f s%n", nodes.size(), nodes.get(nodes.size() - 1)
                .httpPort(), (System.nanoTime() - start) / 1e9);
          }
          Map<String, Object> ready = awaitReady(nodes, indexed, broker.pid());
          Bench.list(run.json, "checks").add(checkQueries(nodes, indexed, options.limit(), ready));
          Runner runner = new Runner(options, generator, run.workDir, broker.pid(), nodes, run.problems);
          if (options.warmupPhaseSeconds() > 0) {
            // Not in the table: the JIT of the nodes (and of the forwarding between them) and of the generator.
            for (Workload workload : List.of(Workload.ORDER, Workload.QUERY)) {
              warmups.add(runner.run("warmup-" + workload.option() + "-n" + count, workload,
                  options.concurrencies().get(0), 0, options.warmupPhaseSeconds()));
            }
          }
          for (int clients : options.concurrencies()) {
            for (Workload workload : List.of(Workload.ORDER, Workload.QUERY)) {
              phases.add(runner.run(workload.option() + "-n" + count + "-c" + clients, workload, clients,
                  options.warmupSeconds(), options.durationSeconds()));
            }
          }
        }
      } finally {
        for (NodeRuntime node : nodes) {
          node.stop().await(120, TimeUnit.SECONDS);
        }
        for (Vertx vertx : vertxes) {
          vertx.close().await(60, TimeUnit.SECONDS);
        }
      }
      run.json.put("summary", summary(options, phases));
    });
  }

  /**
   * Waits until every node folds some orders partitions and has caught up on them, every node's
   * directory knows every node's claim, and this JVM has gone quiet (restores, standby copies and
   * the group's rebalance done): what a joining node costs is not billed to the queries.
   */
  private static Map<String, Object> awaitReady(List<NodeRuntime> nodes, OrderInput input, long brokerPid)
      throws Exception {
    long start = System.nanoTime();
    long deadline = start + TimeUnit.SECONDS.toNanos(600);
    String topic = input.topic;
    while (!splitAndKnown(nodes, topic)) {
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("the orders partitions did not split over the " + nodes.size()
            + " nodes, known by each, in 600 s");
      }
      Thread.sleep(200);
    }
    double split = (System.nanoTime() - start) / 1e9;
    // Idle nodes poll too: past QUIET_MAX_SECONDS the run goes on, with the cores it saw noted.
    long quietDeadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(QUIET_MAX_SECONDS);
    double cores;
    do {
      Meter meter = Meter.start(brokerPid);
      Thread.sleep(2_000);
      cores = ((Number) meter.sample().get("benchJvmCores")).doubleValue();
    } while (cores > QUIET_CORES && System.nanoTime() < quietDeadline);
    double quiet = (System.nanoTime() - start) / 1e9;
    System.out.printf("%d node(s) ready: partitions split and known after %.1f s, quiet (%.2f cores) after %.1f s%n",
        nodes.size(), split, cores, quiet);
    Map<String, Object> ready = new LinkedHashMap<>();
    ready.put("nodes", nodes.size());
    ready.put("secondsToSplitAndKnown", Report.round(split, 1));
    ready.put("secondsToQuiet", Report.round(quiet, 1));
    ready.put("coresWhenQuiet", cores);
    List<Object> partitions = new ArrayList<>();
    for (NodeRuntime node : nodes) {
      partitions.add(new TreeSet<>(node.progress().lag().keySet().stream()
          .filter(p -> p.topic().equals(topic)).map(p -> p.partition()).toList()));
    }
    ready.put("ordersPartitionsByNode", partitions);
    return ready;
  }

  private static boolean splitAndKnown(List<NodeRuntime> nodes, String topic) throws Exception {
    Set<String> folded = new HashSet<>();
    for (NodeRuntime node : nodes) {
      if (!node.progress().caughtUp()
          || node.progress().lag().keySet().stream().noneMatch(p -> p.topic().equals(topic))) {
        return false;
      }
      node.progress().lag().keySet().forEach(p -> folded.add(p.toString()));
    }
    for (NodeRuntime node : nodes) {
      JsonNode claims = read(node.httpPort(), "/v1/_cluster").path("nodes");
      Set<String> claimed = new HashSet<>();
      claims.forEach(claim -> claim.path("partitions").forEach(p -> claimed.add(p.asText())));
      if (claims.size() != nodes.size() || !claimed.equals(folded)) {
        return false;
      }
    }
    return true;
  }

  /**
   * A fast wrong answer is worthless: through every node, the first page of a few customers holds
   * {@code limit} of their orders (or all, if fewer), and walking the pages gives every one of their
   * orders exactly once. A wrong answer fails the run.
   */
  private static Map<String, Object> checkQueries(List<NodeRuntime> nodes, OrderInput input, int limit,
                                                  Map<String, Object> ready) throws Exception {
    int pages = 0;
    for (NodeRuntime node : nodes) {
      for (int i = 0; i < CHECKED_CUSTOMERS; i++) {
        long customer = (long) i * (input.customers - 1) / Math.max(1, CHECKED_CUSTOMERS - 1);
        String email = OrderInput.customer(customer);
        Set<String> expected = new TreeSet<>();
        for (long order = customer; order < input.entities; order += input.customers) {
          expected.add(OrderInput.key(order));
        }
        List<String> walked = new ArrayList<>();
        String after = null;
        do {
          JsonNode page = read(node.httpPort(), "/v1/orders?customer=" + URLEncoder.encode(email, StandardCharsets.UTF_8)
              + "&limit=" + limit + (after == null ? "" : "&after=" + URLEncoder.encode(after, StandardCharsets.UTF_8)));
          pages++;
          JsonNode items = page.path("items");
          if (walked.isEmpty() && items.size() != Math.min(limit, expected.size())) {
            throw new IllegalStateException("the first page of " + email + " through port " + node.httpPort()
                + " holds " + items.size() + " orders, not " + Math.min(limit, expected.size()));
          }
          for (JsonNode item : items) {
            if (!item.path("state").path("customerEmail").asText().equals(email)) {
              throw new IllegalStateException("a page of " + email + " holds " + item);
            }
            walked.add(item.path("key").asText());
          }
          after = page.path("next").isTextual() ? page.path("next").asText() : null;
        } while (after != null && walked.size() <= expected.size());
        if (walked.size() != expected.size() || !new TreeSet<>(walked).equals(expected)) {
          throw new IllegalStateException("the pages of " + email + " through port " + node.httpPort() + " hold "
              + walked.size() + " orders (" + new TreeSet<>(walked).size() + " distinct), not its "
              + expected.size());
        }
      }
    }
    System.out.printf("checked: %d customers through each of %d node(s), %d pages, every order once%n",
        CHECKED_CUSTOMERS, nodes.size(), pages);
    Map<String, Object> check = new LinkedHashMap<>(ready);
    check.put("customersCheckedPerNode", CHECKED_CUSTOMERS);
    check.put("pagesRead", pages);
    return check;
  }

  private static JsonNode read(int port, String path) throws IOException, InterruptedException {
    HttpResponse<String> response = HttpClient.newHttpClient().send(
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).timeout(Duration.ofSeconds(30)).build(),
        HttpResponse.BodyHandlers.ofString());
    if (response.statusCode() != 200) {
      throw new IllegalStateException("GET " + path + " on port " + port + " answered " + response.statusCode() + ": "
          + response.body());
    }
    return new ObjectMapper().readTree(response.body());
  }

  /** Runs the phases: the load generator's closed loops, with this JVM (the nodes) and the broker metered. */
  private record Runner(Options options, HttpBenchmark.Generator generator, Path workDir, long brokerPid,
                        List<NodeRuntime> nodes, List<String> problems) {

    Map<String, Object> run(String name, Workload workload, int clients, double warmupSeconds,
                            double durationSeconds) throws Exception {
      System.gc();
      Thread.sleep(SETTLE_MILLIS);
      String what = workload == Workload.QUERY
          ? "query of a customer's orders, limit " + options.limit() : "GET of one order";
      System.out.printf("%n[%s] %s, %d connections over %d node(s) ... (%.0f s into the run)%n", name, what, clients,
          nodes.size(), (System.nanoTime() - STARTED) / 1e9);
      Path out = workDir.resolve(name + ".json");
      String ports = String.join(",", nodes.stream().map(node -> Integer.toString(node.httpPort())).toList());
      List<String> arguments = List.of(
          "--port", Integer.toString(nodes.get(0).httpPort()), "--ports", ports, "--prefix", name,
          "--workload", workload.option(),
          "--clients", Integer.toString(clients),
          "--entities", Long.toString(options.entities()),
          "--customers", Integer.toString(options.customers()),
          "--limit", Integer.toString(options.limit()),
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
      Map<String, Object> result = new ObjectMapper().readValue(out.toFile(), LinkedHashMap.class);
      Map<String, Object> json = new LinkedHashMap<>();
      json.put("name", name);
      json.put("nodes", nodes.size());
      json.putAll(result);
      json.put("serverSideResources", resources);
      Map<String, Object> requests = HttpBenchmark.requests(json);
      long all = ((Number) json.get("warmupRequests")).longValue() + ((Number) requests.get("requests")).longValue();
      if (all > 0) {
        // All the nodes are in this JVM: their CPU per request together, the generator's apart.
        json.put("benchJvmCpuMicrosPerRequest", Report.round(
            ((Number) resources.get("benchJvmCpuSeconds")).doubleValue() * 1e6 / all, 1));
      }
      long non200 = ((Number) json.get("non200Total")).longValue();
      if (!Boolean.TRUE.equals(json.get("finished"))) {
        problems.add(name + ": the load generator's clients did not all finish in time");
      }
      if (non200 > 0) {
        problems.add(name + ": " + non200 + " answers other than 200, e.g. " + requests.get("failureSamples"));
      }
      Map<?, ?> latency = (Map<?, ?>) requests.get("latencyMs");
      System.out.printf("  %,d requests/s; p50 %s ms, p99 %s ms, p99.9 %s ms, max %s ms; non-200 %d; cores: nodes %s,"
              + " generator %s, broker %s%n",
          HttpBenchmark.perSecond(json), latency.get("p50"), latency.get("p99"), latency.get("p99.9"),
          latency.get("max"), non200, resources.get("benchJvmCores"),
          ((Map<?, ?>) json.get("resources")).get("generatorJvmCores"), resources.get("brokerCores"));
      return json;
    }
  }

  /** Per node count and concurrency: the GET's and the query's rate and latencies, and their ratio. */
  private static Map<String, Object> summary(Options options, List<Map<String, Object>> phases) {
    List<Map<String, Object>> rows = new ArrayList<>();
    for (int count : options.nodes()) {
      for (int clients : options.concurrencies()) {
        Map<String, Object> get = phase(phases, Workload.ORDER.option() + "-n" + count + "-c" + clients);
        Map<String, Object> query = phase(phases, Workload.QUERY.option() + "-n" + count + "-c" + clients);
        if (get == null || query == null) {
          continue;
        }
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("nodes", count);
        row.put("connections", clients);
        row.put("getPerSecond", HttpBenchmark.perSecond(get));
        row.put("getLatencyMs", HttpBenchmark.requests(get).get("latencyMs"));
        row.put("queryPerSecond", HttpBenchmark.perSecond(query));
        row.put("queryLatencyMs", HttpBenchmark.requests(query).get("latencyMs"));
        row.put("queryToGet", HttpBenchmark.perSecond(get) == 0 ? 0
            : Report.round((double) HttpBenchmark.perSecond(query) / HttpBenchmark.perSecond(get), 3));
        row.put("getCpuMicros", get.get("benchJvmCpuMicrosPerRequest"));
        row.put("queryCpuMicros", query.get("benchJvmCpuMicrosPerRequest"));
        rows.add(row);
      }
    }
    Map<String, Object> summary = new LinkedHashMap<>();
    summary.put("rows", rows);
    return summary;
  }

  private static Map<String, Object> phase(List<Map<String, Object>> phases, String name) {
    return phases.stream().filter(p -> p.get("name").equals(name)).findFirst().orElse(null);
  }

  @SuppressWarnings("unchecked")
  private static String table(Map<String, Object> run) {
    StringBuilder out = new StringBuilder();
    String format = "%5s %5s %9s %19s %9s %19s %9s %16s%n";
    out.append(String.format(format, "nodes", "conns", "GET /s", "p50 / p99 ms", "query /s", "p50 / p99 ms",
        "query/GET", "CPU us GET/query"));
    Map<String, Object> summary = (Map<String, Object>) run.get("summary");
    if (summary != null) {
      for (Map<String, Object> row : Bench.list(summary, "rows")) {
        out.append(String.format(format, row.get("nodes"), row.get("connections"),
            String.format("%,d", (Long) row.get("getPerSecond")), latencies(row.get("getLatencyMs")),
            String.format("%,d", (Long) row.get("queryPerSecond")), latencies(row.get("queryLatencyMs")),
            String.format("%.3f", ((Number) row.get("queryToGet")).doubleValue()),
            row.get("getCpuMicros") + " / " + row.get("queryCpuMicros")));
      }
    }
    Map<String, Object> settings = (Map<String, Object>) run.get("settings");
    out.append(String.format("GET: GET /v1/orders/<random id>; query: GET /v1/orders?customer=<random>&limit=%s (%s"
            + " orders each); closed loops, connections spread over the nodes, all nodes in one JVM on %s cores: the"
            + " 3-node figures are noisy%n", settings.get("limit"), settings.get("ordersPerCustomer"),
        ((Map<String, Object>) run.get("machine")).get("nproc")));
    Map<String, Object> fold = (Map<String, Object>) run.get("fold");
    if (fold != null && fold.get("withIndexes") != null) {
      Map<String, Object> on = (Map<String, Object>) fold.get("withIndexes");
      Map<String, Object> off = (Map<String, Object>) fold.get("withoutIndexes");
      out.append(String.format("fold of %,d orders: with the indexes customer and status %,d events/s", settings.get(
          "entities"), ((Number) on.get("eventsPerSecond")).longValue()));
      if (off != null) {
        out.append(String.format(", without %,d; with/without %.3f (goal >= 0.9: %s; first to last event %.3f)",
            ((Number) off.get("eventsPerSecond")).longValue(), ((Number) fold.get("onToOff")).doubleValue(),
            Boolean.TRUE.equals(fold.get("met")) ? "met" : "not met",
            ((Number) fold.get("onToOffSteady")).doubleValue()));
      }
      out.append(String.format("%n"));
    }
    return out.toString();
  }

  private static String latencies(Object latencyMs) {
    Map<?, ?> latency = (Map<?, ?>) latencyMs;
    return latency == null || latency.isEmpty() ? "-" : latency.get("p50") + " / " + latency.get("p99");
  }
}
