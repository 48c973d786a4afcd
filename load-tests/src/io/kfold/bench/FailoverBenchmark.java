package io.kfold.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kfold.log.LocalBroker;
import org.apache.kafka.common.utils.Utils;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Pattern;

/**
 * How long writes stall when a node or the broker goes away, measured from outside as a client sees
 * it, with kfold's default configuration.
 *
 * <p>The run: one local broker (a process of its own, so that it can be killed and started again on
 * the same port and log folder); three kfold nodes, each its own JVM running {@code io.kfold.Main}
 * with the default configuration but for its data folder, HTTP port and the broker; the default
 * configuration's three types of four partitions each. {@code --writers} clients each own one entity
 * (of the three types in turn) and append one event after another to it through node 0, each with an
 * Idempotency-Key, retrying the same key after any error or timeout until it is acknowledged. Then:
 * a warm-up; kill -9 of node 2; its restart on the same data folder; SIGTERM of node 1 (a step of a
 * rolling restart); its restart; kill -9 of the broker, some seconds down, its restart. For each event
 * it prints the longest stall of each entity's writes (the time from the event to the entity's first
 * acknowledged write after it, and between two successive ones, until the end of the measurement): the
 * max, p99, how many entities stalled over a second, and the time until every entity answered again.
 * At the end every entity's history must hold each acknowledged write exactly once; a run that finds
 * one lost or applied twice says so and fails.
 *
 * <p>Usage: {@code load-tests/run.sh failover [--writers N] [--warmup S] [--after S] [--broker-down S]
 * [--pause-ms MS] [--node-java-opts "..."]}; see load-tests/README.md.
 */
public final class FailoverBenchmark {

  private static final String APP = "failover-bench";
  /** The default configuration's types (each with the default four partitions); writers take them in turn. */
  private static final List<String> TYPES = List.of("users", "orders", "shipments");
  private static final int PARTITIONS = 4;
  /** Longest wait for the entities to answer after an event, or for the nodes to settle: past it the run fails. */
  private static final long WAIT_SECONDS = 240;
  /** A request gets this long: more than the node's own 10 s write timeout, so that its 504 comes first. */
  private static final Duration REQUEST_TIMEOUT = Duration.ofSeconds(15);
  /** Between a failed attempt and its retry: retrying at once would only spin against a node that is down. */
  private static final long RETRY_PAUSE_MILLIS = 100;
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final long STARTED = System.nanoTime();

  record Options(int writers, int warmupSeconds, int afterSeconds, int brokerDownSeconds, int pauseMillis,
                 List<String> nodeJavaOptions) {

    static Options parse(Bench.Args args) {
      int writers = 40;
      int warmup = 10;
      int after = 15;
      int brokerDown = 8;
      int pause = 50;
      // The heap the README advises (run.sh passes KFOLD_NODE_JAVA_OPTS), as the other benchmarks' nodes.
      List<String> javaOptions = ChildJvm.nodeJavaOptions();
      while (args.next()) {
        switch (args.option()) {
          case "--writers" -> writers = Integer.parseInt(args.value());
          case "--warmup" -> warmup = Integer.parseInt(args.value());
          case "--after" -> after = Integer.parseInt(args.value());
          case "--broker-down" -> brokerDown = Integer.parseInt(args.value());
          case "--pause-ms" -> pause = Integer.parseInt(args.value());
          case "--node-java-opts" -> javaOptions = Arrays.stream(args.value().trim().split("\\s+"))
              .filter(option -> !option.isEmpty()).toList();
          default -> args.common();
        }
      }
      if (writers < 1 || writers > 1000 || warmup < 1 || after < 1 || brokerDown < 0 || pause < 0) {
        throw new IllegalArgumentException("--writers 1 to 1000; --warmup and --after at least 1; --broker-down and"
            + " --pause-ms at least 0");
      }
      return new Options(writers, warmup, after, brokerDown, pause, javaOptions);
    }
  }

  public static void main(String[] args) throws Exception {
    Bench.main(args, "failover", Options::parse, FailoverBenchmark::run, FailoverBenchmark::table);
  }

  private static void run(Options options, Bench.Run run) throws Exception {
    Map<String, Object> settings = new LinkedHashMap<>();
    settings.put("nodes", 3);
    settings.put("types", TYPES);
    settings.put("partitionsPerType", PARTITIONS);
    settings.put("writers", options.writers());
    settings.put("writesThrough", "node 0");
    settings.put("pauseMillisBetweenWrites", options.pauseMillis());
    settings.put("warmupSeconds", options.warmupSeconds());
    settings.put("measuredSecondsAfterEveryEntityAnswered", options.afterSeconds());
    settings.put("brokerDownSeconds", options.brokerDownSeconds());
    settings.put("nodeJavaOptions", options.nodeJavaOptions());
    settings.put("nodeConfiguration", "kfold's default, but for dataDir, http.port and kafka.bootstrap");
    run.json.put("settings", settings);
    run.announce(String.format("3 nodes (each its own JVM%s), default configuration, %s x %d partitions;"
            + " %d writers through node 0, %d ms between a writer's writes", options.nodeJavaOptions().isEmpty()
            ? ", JVM defaults" : " " + String.join(" ", options.nodeJavaOptions()), TYPES, PARTITIONS,
        options.writers(), options.pauseMillis()));

    run.withBroker(first -> {
      Cluster cluster = new Cluster(run, options, first);
      Thread stopAll = new Thread(cluster::destroyAll, "stop-failover-processes");
      Runtime.getRuntime().addShutdownHook(stopAll);
      try {
        cluster.run();
      } finally {
        cluster.close();
        try {
          Runtime.getRuntime().removeShutdownHook(stopAll);
        } catch (IllegalStateException shuttingDown) {
          // the hook runs anyway
        }
      }
    });
  }

  /** The run's processes (broker, nodes, writers) and its phases. */
  private static final class Cluster {
    private final Bench.Run run;
    private final Options options;
    private final Path brokerDir;
    private volatile LocalBroker broker;
    /** Whether {@link #broker} is a second one, which this class closes (Bench closes the first). */
    private boolean restartedBroker;
    private final List<Node> nodes = new ArrayList<>();
    private final List<Writer> writers = new ArrayList<>();
    private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(2)).build();
    private final List<Map<String, Object>> events = new ArrayList<>();
    private final List<Map<String, Object>> restarts = new ArrayList<>();
    private final List<Map<String, Object>> memory = new ArrayList<>();

    Cluster(Bench.Run run, Options options, LocalBroker broker) {
      this.run = run;
      this.options = options;
      this.broker = broker;
      this.brokerDir = run.workDir.resolve("broker");
    }

    void run() throws Exception {
      run.json.put("events", events);
      run.json.put("restarts", restarts);
      run.json.put("memory", memory);
      Path logConfig = writeNodeLogConfig(run.workDir.resolve("node-log4j2.properties"));
      for (int i = 0; i < 3; i++) {
        nodes.add(new Node(i, run.workDir.resolve("node-" + i), logConfig, broker.bootstrap(), options.nodeJavaOptions()));
      }
      // Node 0 first: it creates the topics, which the others would otherwise race to create.
      long start = System.nanoTime();
      nodes.get(0).start();
      nodes.get(0).awaitHealth(http);
      nodes.get(1).start();
      nodes.get(2).start();
      nodes.get(1).awaitHealth(http);
      nodes.get(2).awaitHealth(http);
      List<Integer> assignment = awaitSettled();
      run.json.put("startSeconds", Report.round(seconds(start), 1));
      run.json.put("initialAssignment", assignment);
      System.out.printf("3 nodes started and settled in %.1f s; events partitions per node %s%n", seconds(start),
          slashed(assignment));
      sampleMemory("started");

      for (int i = 0; i < options.writers(); i++) {
        writers.add(new Writer(i, TYPES.get(i % TYPES.size()), nodes.get(0).port, options.pauseMillis(), http));
      }
      writers.forEach(Writer::start);
      long warmupStart = System.nanoTime();
      long answered = awaitEveryEntityAnswered(warmupStart, "the first writes");
      Thread.sleep(TimeUnit.SECONDS.toMillis(options.warmupSeconds()));
      Map<String, Object> steady = stalls("steady writes, no event", answered, System.nanoTime(), Set.of());
      events.add(steady);
      printEvent(steady);
      sampleMemory("warm-up");

      Node killed = nodes.get(2);
      Set<Integer> killedEntities = entitiesOf(killed);
      long kill = System.nanoTime();
      killed.kill();
      events.add(measure("kill -9 node 2", kill, killedEntities));
      sampleMemory("after kill -9 node 2");
      restart(killed, "node 2 after kill -9");
      sampleMemory("node 2 restarted");

      Node stopped = nodes.get(1);
      Set<Integer> stoppedEntities = entitiesOf(stopped);
      long term = System.nanoTime();
      stopped.terminate();
      Map<String, Object> termEvent = measure("SIGTERM node 1", term, stoppedEntities);
      termEvent.put("nodeExitSeconds", stopped.exitSeconds(term));
      events.add(termEvent);
      sampleMemory("after SIGTERM node 1");
      restart(stopped, "node 1 after SIGTERM");
      sampleMemory("node 1 restarted");

      events.add(brokerRestart());
      sampleMemory("after broker restart");

      long stopWriters = System.nanoTime();
      writers.forEach(Writer::stopAfterCurrent);
      for (Writer writer : writers) {
        writer.join(TimeUnit.SECONDS.toMillis(WAIT_SECONDS));
      }
      System.out.printf("%nwriters stopped in %.1f s; checking every entity's history ...%n", seconds(stopWriters));
      run.json.put("writes", writeSummary());
      run.json.put("check", checkHistories());
      run.json.put("runSeconds", Report.round(seconds(STARTED), 0));
    }

    /** Stops what is still running: the writers, the nodes (SIGTERM, then SIGKILL), the second broker. */
    void close() {
      writers.forEach(Writer::stopNow);
      nodes.forEach(Node::terminate);
      for (Node node : nodes) {
        node.stop();
      }
      for (Node node : nodes) {
        node.keepLog();
      }
      if (restartedBroker) {
        broker.close();
      }
      keep(brokerDir.resolve("broker.log"), "failover-broker.log");
    }

    /** For Ctrl-C: nothing this run started may outlive it. */
    void destroyAll() {
      nodes.forEach(Node::destroy);
      if (restartedBroker) {
        broker.close();
      }
    }

    /**
     * Measures one event that began at {@code at}: waits until every entity answered again, then
     * {@code --after} seconds more, and takes each entity's longest stall over that time.
     */
    private Map<String, Object> measure(String name, long at, Set<Integer> nodesEntities) throws Exception {
      System.out.printf("%n%s (%d of %d entities in its partitions) ...%n", name, nodesEntities.size(), writers.size());
      awaitEveryEntityAnswered(at, name);
      Thread.sleep(TimeUnit.SECONDS.toMillis(options.afterSeconds()));
      Map<String, Object> event = stalls(name, at, System.nanoTime(), nodesEntities);
      printEvent(event);
      return event;
    }

    /** Starts the node again on its data folder and port, and waits until the cluster is balanced again. */
    private void restart(Node node, String name) throws Exception {
      long start = System.nanoTime();
      node.start();
      node.awaitHealth(http);
      double healthy = seconds(start);
      List<Integer> assignment = awaitSettled();
      double settled = seconds(start);
      long balanced = System.nanoTime();
      awaitEveryEntityAnswered(balanced, "writes after " + name);
      Map<String, Object> restart = new LinkedHashMap<>();
      restart.put("restart", name);
      restart.put("secondsToHealthy", Report.round(healthy, 1));
      restart.put("secondsToBalanced", Report.round(settled, 1));
      restart.put("assignment", assignment);
      restarts.add(restart);
      System.out.printf("restarted %s: /health after %.1f s, balanced after %.1f s (events partitions per node %s)%n",
          name, healthy, settled, slashed(assignment));
    }

    /**
     * kill -9 of the broker, {@code --broker-down} seconds without it, and a new broker process on the
     * same folder and port. Meanwhile each node's /ready is watched: it should say NOT_READY.
     */
    private Map<String, Object> brokerRestart() throws Exception {
      String name = "broker kill -9, " + options.brokerDownSeconds() + " s down";
      System.out.printf("%n%s ...%n", name);
      List<ReadyWatch> watches = nodes.stream().map(node -> new ReadyWatch(node, http)).toList();
      watches.forEach(Thread::start);
      long kill = System.nanoTime();
      long back;
      try {
        ProcessHandle old = ProcessHandle.of(broker.pid()).orElseThrow();
        old.destroyForcibly();
        old.onExit().get(30, TimeUnit.SECONDS);
        Thread.sleep(TimeUnit.SECONDS.toMillis(options.brokerDownSeconds()));
        broker = LocalBroker.start(brokerDir, LocalBroker.defaultLibs(), 0);
        restartedBroker = true;
        back = System.nanoTime();
        System.out.printf("  broker back (pid %d, answering) %.1f s after the kill%n", broker.pid(), seconds(kill));
        long deadline = back + TimeUnit.SECONDS.toNanos(WAIT_SECONDS);
        while (watches.stream().anyMatch(watch -> watch.firstAfter(back, true) < 0) && System.nanoTime() < deadline) {
          Thread.sleep(50);
        }
      } finally {
        watches.forEach(ReadyWatch::finish);
      }
      Map<String, Object> event = measure(name, kill, allEntities());
      long firstAck = writers.stream().mapToLong(writer -> writer.firstAckAfter(back)).filter(t -> t > 0).min()
          .orElse(-1);
      Map<Integer, Object> ready = new TreeMap<>();
      Map<Integer, Object> notReady = new TreeMap<>();
      Map<Integer, Object> whileDown = new TreeMap<>();
      for (ReadyWatch watch : watches) {
        long readyAt = watch.firstAfter(back, true);
        long notReadyAt = watch.firstAfter(kill, false);
        ready.put(watch.node.index, readyAt < 0 ? null : Report.round((readyAt - back) / 1e9, 2));
        notReady.put(watch.node.index, notReadyAt < 0 || notReadyAt > back ? null
            : Report.round((notReadyAt - kill) / 1e9, 2));
        whileDown.put(watch.node.index, watch.outcomesBetween(kill, back));
      }
      event.put("brokerAnsweringSecondsAfterKill", Report.round((back - kill) / 1e9, 2));
      event.put("firstAcknowledgedWriteSecondsAfterBrokerBack", firstAck < 0 ? null
          : Report.round((firstAck - back) / 1e9, 2));
      event.put("readySecondsAfterBrokerBackByNode", ready);
      event.put("allReadySecondsAfterBrokerBack", ready.containsValue(null) ? null
          : ready.values().stream().mapToDouble(v -> (Double) v).max().orElse(0));
      event.put("notReadySecondsAfterKillByNode", notReady);
      event.put("readyAnswersWhileDownByNode", whileDown);
      if (ready.containsValue(null)) {
        run.problems.add("after the broker restart, /ready did not answer 200 on every node within " + WAIT_SECONDS
            + " s: " + ready);
      }
      System.out.printf("  first acknowledged write %s s after the broker answered; /ready 200 on all nodes after %s s;"
              + " while it was down, /ready answered (by node; -1: no answer in %d s) %s%n",
          event.get("firstAcknowledgedWriteSecondsAfterBrokerBack"), event.get("allReadySecondsAfterBrokerBack"),
          ReadyWatch.TIMEOUT.toSeconds(), whileDown);
      return event;
    }

    /** Waits until every writer has had a write acknowledged after {@code since}; returns when. */
    private long awaitEveryEntityAnswered(long since, String what) throws InterruptedException {
      long deadline = since + TimeUnit.SECONDS.toNanos(WAIT_SECONDS);
      while (writers.stream().anyMatch(writer -> writer.firstAckAfter(since) < 0)) {
        if (System.nanoTime() > deadline) {
          long silent = writers.stream().filter(writer -> writer.firstAckAfter(since) < 0).count();
          run.problems.add(what + ": " + silent + " entities had no write acknowledged within " + WAIT_SECONDS + " s");
          break;
        }
        Thread.sleep(20);
      }
      return System.nanoTime();
    }

    /**
     * Waits until the three nodes are settled: each answers /ready 200, knows the three as live, each
     * folds some events partitions, and together they fold each of the 12 once. Returns the events
     * partitions per node, as node 0 sees them.
     */
    private List<Integer> awaitSettled() throws Exception {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS);
      while (true) {
        List<Integer> assignment = settled();
        if (assignment != null) {
          return assignment;
        }
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException("the three nodes did not settle (ready, each folding some partitions, each"
              + " known to all) within " + WAIT_SECONDS + " s");
        }
        Thread.sleep(200);
      }
    }

    private List<Integer> settled() {
      List<Integer> fromNode0 = null;
      for (Node node : nodes) {
        if (node.status(http, "/ready") != 200) {
          return null;
        }
        Map<Integer, Set<String>> claims = node.claims(http, nodes);
        if (claims == null || claims.size() != nodes.size()) {
          return null;
        }
        Set<String> all = new TreeSet<>();
        int claimed = 0;
        List<Integer> counts = new ArrayList<>();
        for (int i = 0; i < nodes.size(); i++) {
          Set<String> partitions = claims.getOrDefault(i, Set.of());
          if (partitions.isEmpty()) {
            return null;
          }
          all.addAll(partitions);
          claimed += partitions.size();
          counts.add(partitions.size());
        }
        if (all.size() != TYPES.size() * PARTITIONS || claimed != all.size()) {
          return null;
        }
        if (fromNode0 == null) {
          fromNode0 = counts;
        }
      }
      return fromNode0;
    }

    /** The writers whose entity is in an events partition {@code node} folds now, as node 0 sees it. */
    private Set<Integer> entitiesOf(Node node) {
      Map<Integer, Set<String>> claims = nodes.get(0).claims(http, nodes);
      Set<String> partitions = claims == null ? Set.of() : claims.getOrDefault(node.index, Set.of());
      Set<Integer> entities = new TreeSet<>();
      for (Writer writer : writers) {
        if (partitions.contains(writer.partition())) {
          entities.add(writer.index);
        }
      }
      return entities;
    }

    private Set<Integer> allEntities() {
      Set<Integer> all = new TreeSet<>();
      writers.forEach(writer -> all.add(writer.index));
      return all;
    }

    /**
     * Each entity's longest stall from {@code from} to {@code to}: the longest of the time from
     * {@code from} to its first acknowledged write, the times between successive ones, and the time
     * from its last one to {@code to}; then their max, p99 and count over a second, for all entities
     * and apart for those of the event's node.
     */
    private Map<String, Object> stalls(String name, long from, long to, Set<Integer> nodesEntities) {
      List<Double> all = new ArrayList<>();
      List<Double> ofNode = new ArrayList<>();
      List<Double> others = new ArrayList<>();
      double everyAnswered = 0;
      for (Writer writer : writers) {
        long[] acks = writer.acksBetween(from, to);
        long previous = from;
        long longest = 0;
        for (long ack : acks) {
          longest = Math.max(longest, ack - previous);
          previous = ack;
        }
        longest = Math.max(longest, to - previous);
        double stall = longest / 1e9;
        all.add(stall);
        (nodesEntities.contains(writer.index) ? ofNode : others).add(stall);
        everyAnswered = Math.max(everyAnswered, acks.length == 0 ? (to - from) / 1e9 : (acks[0] - from) / 1e9);
      }
      Map<String, Object> event = new LinkedHashMap<>();
      event.put("event", name);
      event.put("measuredSeconds", Report.round((to - from) / 1e9, 1));
      event.put("entities", all.size());
      event.put("everyEntityAnsweredSeconds", Report.round(everyAnswered, 2));
      event.put("maxStallSeconds", Report.round(max(all), 2));
      event.put("p99StallSeconds", Report.round(percentile(all, 0.99), 2));
      event.put("entitiesStalledOver1s", all.stream().filter(s -> s > 1.0).count());
      event.put("nodesEntities", ofNode.size());
      event.put("nodesEntitiesMaxStallSeconds", ofNode.isEmpty() ? null : Report.round(max(ofNode), 2));
      event.put("otherEntitiesMaxStallSeconds", others.isEmpty() ? null : Report.round(max(others), 2));
      event.put("otherEntitiesStalledOver1s", others.stream().filter(s -> s > 1.0).count());
      return event;
    }

    private void printEvent(Map<String, Object> event) {
      System.out.printf("  %s: every entity answered after %.2f s; longest stall per entity: max %.2f s, p99 %.2f s,"
              + " %d of %d over 1 s (the node's entities: %d, max %s s; the others' max %s s)%n", event.get("event"),
          event.get("everyEntityAnsweredSeconds"), event.get("maxStallSeconds"), event.get("p99StallSeconds"),
          event.get("entitiesStalledOver1s"), event.get("entities"), event.get("nodesEntities"),
          event.get("nodesEntitiesMaxStallSeconds"), event.get("otherEntitiesMaxStallSeconds"));
    }

    private void sampleMemory(String phase) {
      Map<String, Object> sample = new LinkedHashMap<>();
      sample.put("phase", phase);
      List<Map<String, Object>> perNode = new ArrayList<>();
      for (Node node : nodes) {
        Map<String, Object> rss = new LinkedHashMap<>();
        long pid = node.alivePid();
        rss.put("rssMiB", pid < 0 ? null : mib(Rss.rssBytes(pid)));
        rss.put("peakRssMiB", pid < 0 ? null : mib(Rss.peakRssBytes(pid)));
        perNode.add(rss);
      }
      sample.put("nodes", perNode);
      sample.put("brokerRssMiB", mib(Rss.rssBytes(broker.pid())));
      memory.add(sample);
    }

    private Map<String, Object> writeSummary() {
      Map<String, Object> summary = new LinkedHashMap<>();
      long acknowledged = 0;
      long attempts = 0;
      Map<String, Long> failures = new TreeMap<>();
      for (Writer writer : writers) {
        acknowledged += writer.acknowledged();
        attempts += writer.attempts.get();
        writer.failures.forEach((status, count) -> failures.merge(status, count.get(), Long::sum));
      }
      summary.put("acknowledged", acknowledged);
      summary.put("attempts", attempts);
      summary.put("failedAttemptsByOutcome", failures);
      summary.put("unacknowledgedAtEnd", writers.stream().filter(writer -> writer.unacknowledged > 0).count());
      System.out.printf("%,d writes acknowledged in %,d attempts; failed attempts %s%n", acknowledged, attempts, failures);
      writers.stream().filter(writer -> writer.fatal != null)
          .forEach(writer -> run.problems.add("writer " + writer.index + " stopped: " + writer.fatal));
      return summary;
    }

    /**
     * Reads every entity's whole history (through node 0) and counts each write's sequence number: an
     * acknowledged one must be there exactly once; the one a stopped writer never saw acknowledged, at
     * most once.
     */
    private Map<String, Object> checkHistories() throws Exception {
      long lost = 0;
      long duplicated = 0;
      long events = 0;
      List<String> examples = new ArrayList<>();
      for (Writer writer : writers) {
        Map<Long, Integer> counts = new HashMap<>();
        long fromVersion = 1;
        while (true) {
          String path = "/v1/" + writer.type + "/" + writer.key + "/events?limit=1000&fromVersion=" + fromVersion;
          HttpResponse<String> response = http.send(HttpRequest.newBuilder(nodes.get(0).uri(path))
              .timeout(REQUEST_TIMEOUT).build(), HttpResponse.BodyHandlers.ofString());
          if (response.statusCode() != 200) {
            throw new IllegalStateException("GET " + path + " answered " + response.statusCode() + ": " + response.body());
          }
          JsonNode page = JSON.readTree(response.body()).path("events");
          for (JsonNode event : page) {
            counts.merge(event.path("payload").path("seq").asLong(-1), 1, Integer::sum);
          }
          events += page.size();
          fromVersion += page.size();
          if (page.size() < 1000) {
            break;
          }
        }
        for (long seq : writer.acknowledgedSeqs()) {
          int count = counts.getOrDefault(seq, 0);
          if (count == 0) {
            lost++;
            if (examples.size() < 5) {
              examples.add(writer.key + " write " + seq + " acknowledged but not in its history");
            }
          }
        }
        for (Map.Entry<Long, Integer> entry : counts.entrySet()) {
          if (entry.getValue() > 1) {
            duplicated += entry.getValue() - 1;
            if (examples.size() < 5) {
              examples.add(writer.key + " write " + entry.getKey() + " " + entry.getValue() + " times in its history");
            }
          }
        }
      }
      Map<String, Object> check = new LinkedHashMap<>();
      check.put("eventsRead", events);
      check.put("lost", lost);
      check.put("duplicated", duplicated);
      check.put("examples", examples);
      if (lost > 0 || duplicated > 0) {
        System.out.printf("%n!!!!!!!! %d ACKNOWLEDGED WRITES LOST, %d APPLIED TWICE, e.g. %s !!!!!!!!%n", lost,
            duplicated, examples);
        run.problems.add(lost + " acknowledged writes lost and " + duplicated + " applied twice, e.g. " + examples);
      } else {
        System.out.printf("history check: %,d events read, every acknowledged write there exactly once (0 lost, 0"
            + " duplicated)%n", events);
      }
      return check;
    }
  }

  /** A kfold node in a JVM of its own, started again on the same data folder and port after a kill. */
  private static final class Node {
    private static final Pattern EVENTS_PARTITION =
        Pattern.compile(Pattern.quote(APP) + "\\.(" + String.join("|", TYPES) + ")\\.events-(\\d+)");
    final int index;
    final int port;
    private final Path dataDir;
    private final Path log;
    private final Path logConfig;
    private final Map<String, String> env;
    private final List<String> javaOptions;
    private Process process;
    /** When the current process was seen to exit (System.nanoTime), 0 while it runs. */
    private volatile long exitedAt;

    Node(int index, Path dataDir, Path logConfig, String bootstrap, List<String> javaOptions) throws IOException {
      this.index = index;
      this.port = LocalBroker.freePort();
      this.dataDir = dataDir;
      this.log = dataDir.resolveSibling("node-" + index + ".log");
      this.logConfig = logConfig;
      this.javaOptions = javaOptions;
      // The default configuration but for where the node keeps its files, answers, and finds Kafka.
      env = new HashMap<>();
      env.put("KFOLD_APP", APP);
      env.put("KFOLD_DATA_DIR", dataDir.toString());
      env.put("KFOLD_HTTP_PORT", Integer.toString(port));
      env.put("KFOLD_KAFKA_BOOTSTRAP", bootstrap);
    }

    URI uri(String path) {
      return URI.create("http://127.0.0.1:" + port + path);
    }

    String url() {
      return "http://127.0.0.1:" + port;
    }

    void start() throws IOException {
      List<String> command = new ArrayList<>();
      command.add(ProcessHandle.current().info().command().orElse("java"));
      command.addAll(javaOptions);
      command.add("-Dlog4j2.configurationFile=" + logConfig);
      command.addAll(List.of("-cp", System.getProperty("java.class.path"), "io.kfold.Main"));
      ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true)
          .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
      // Whatever KFOLD_* this shell has must not change the default configuration the run measures.
      builder.environment().keySet().removeIf(name -> name.startsWith("KFOLD_"));
      builder.environment().putAll(env);
      // Run from the node's folder: a conf/kfold.yaml in the working folder would replace the default.
      Files.createDirectories(dataDir);
      builder.directory(dataDir.toFile());
      exitedAt = 0;
      process = builder.start();
      process.onExit().thenRun(() -> exitedAt = System.nanoTime());
      System.out.printf("  node %d: pid %d, port %d%n", index, process.pid(), port);
    }

    void awaitHealth(HttpClient http) throws InterruptedException {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS);
      while (status(http, "/health") != 200) {
        if (!process.isAlive()) {
          throw new IllegalStateException("node " + index + " exited with " + process.exitValue() + "; see " + log);
        }
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException("node " + index + " not healthy after " + WAIT_SECONDS + " s; see " + log);
        }
        Thread.sleep(100);
      }
    }

    int status(HttpClient http, String path) {
      return status(http, path, Duration.ofSeconds(2));
    }

    /** The status of a GET, -1 if it got no answer within {@code timeout}. */
    int status(HttpClient http, String path, Duration timeout) {
      try {
        return http.send(HttpRequest.newBuilder(uri(path)).timeout(timeout).build(),
            HttpResponse.BodyHandlers.discarding()).statusCode();
      } catch (IOException e) {
        return -1;
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return -1;
      }
    }

    /** The events partitions each live node folds, by index, as this node's /v1/_cluster says; null if unknown. */
    Map<Integer, Set<String>> claims(HttpClient http, List<Node> all) {
      try {
        HttpResponse<String> response = http.send(HttpRequest.newBuilder(uri("/v1/_cluster"))
            .timeout(Duration.ofSeconds(2)).build(), HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() != 200) {
          return null;
        }
        Map<Integer, Set<String>> claims = new TreeMap<>();
        for (JsonNode claim : JSON.readTree(response.body()).path("nodes")) {
          if (!claim.path("status").asText().equals("live")) {
            continue;
          }
          Node owner = all.stream().filter(node -> node.url().equals(claim.path("url").asText())).findFirst()
              .orElse(null);
          if (owner == null) {
            return null;
          }
          Set<String> partitions = new TreeSet<>();
          claim.path("partitions").forEach(p -> {
            if (EVENTS_PARTITION.matcher(p.asText()).matches()) {
              partitions.add(p.asText());
            }
          });
          claims.put(owner.index, partitions);
        }
        return claims;
      } catch (IOException e) {
        return null;
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return null;
      }
    }

    /** SIGKILL: nothing is flushed, closed or said to the group. */
    void kill() throws InterruptedException {
      process.destroyForcibly();
      process.waitFor(30, TimeUnit.SECONDS);
    }

    /** SIGTERM: the node stops cleanly, as in a rolling restart; not waited for. */
    void terminate() {
      if (process != null) {
        process.destroy();
      }
    }

    /** Seconds from {@code since} until the node's process exited (waiting for it, 60 s at most). */
    double exitSeconds(long since) throws InterruptedException {
      if (!process.waitFor(60, TimeUnit.SECONDS)) {
        return -1;
      }
      while (exitedAt == 0) {  // the exit callback runs on another thread
        Thread.sleep(1);
      }
      return Report.round((exitedAt - since) / 1e9, 2);
    }

    long alivePid() {
      return process != null && process.isAlive() ? process.pid() : -1;
    }

    void stop() {
      if (process == null || !process.isAlive()) {
        return;
      }
      process.destroy();
      try {
        if (!process.waitFor(60, TimeUnit.SECONDS)) {
          process.destroyForcibly();
          process.waitFor(30, TimeUnit.SECONDS);
        }
      } catch (InterruptedException e) {
        process.destroyForcibly();
        Thread.currentThread().interrupt();
      }
    }

    void destroy() {
      if (process != null) {
        process.destroyForcibly();
      }
    }

    void keepLog() {
      keep(log, "failover-node-" + index + ".log");
    }
  }

  /** Asks one node's /ready over and over, each answer kept with its time, while the broker goes and comes back. */
  private static final class ReadyWatch extends Thread {
    static final Duration TIMEOUT = Duration.ofSeconds(5);
    final Node node;
    private final HttpClient http;
    /** The time of each answer (System.nanoTime) and its status, -1 for none within {@link #TIMEOUT}. */
    private final List<long[]> answers = new ArrayList<>();
    private volatile boolean finished;

    ReadyWatch(Node node, HttpClient http) {
      super("ready-watch-" + node.index);
      setDaemon(true);
      this.node = node;
      this.http = http;
    }

    @Override
    public void run() {
      while (!finished) {
        int status = node.status(http, "/ready", TIMEOUT);
        synchronized (answers) {
          answers.add(new long[] {System.nanoTime(), status});
        }
        try {
          Thread.sleep(100);
        } catch (InterruptedException e) {
          return;
        }
      }
    }

    /** The time of the first answer after {@code since} that was 200 ({@code ready}) or not; -1 if none. */
    long firstAfter(long since, boolean ready) {
      synchronized (answers) {
        return answers.stream().filter(a -> a[0] > since && (a[1] == 200) == ready).mapToLong(a -> a[0]).findFirst()
            .orElse(-1);
      }
    }

    /** How many answers of each status came between the two times. */
    Map<Long, Long> outcomesBetween(long from, long to) {
      Map<Long, Long> outcomes = new TreeMap<>();
      synchronized (answers) {
        answers.stream().filter(a -> a[0] > from && a[0] <= to).forEach(a -> outcomes.merge(a[1], 1L, Long::sum));
      }
      return outcomes;
    }

    void finish() {
      finished = true;
    }
  }

  /**
   * One client that owns one entity: appends one event after another (its payload's {@code seq} counts
   * them), each with an Idempotency-Key of its own, retrying the same key after any failure until it is
   * acknowledged; then pauses and writes the next.
   */
  private static final class Writer extends Thread {
    final int index;
    final String type;
    final String key;
    private final int port;
    private final int pauseMillis;
    private final HttpClient http;
    /** Acknowledged writes, in order: the time of each acknowledgement and its sequence number. */
    private long[] ackTimes = new long[1024];
    private long[] ackSeqs = new long[1024];
    private int acks;
    final AtomicLong attempts = new AtomicLong();
    /** Failed attempts by outcome: an HTTP status, or the exception's class. */
    final Map<String, AtomicLong> failures = new ConcurrentHashMap<>();
    private volatile boolean stopAfterCurrent;
    private volatile boolean stopNow;
    /** The sequence number the writer gave up on when stopped, 0 if none. */
    volatile long unacknowledged;
    /** A refusal no retry can mend (a 4xx): the writer stopped. */
    volatile String fatal;

    Writer(int index, String type, int port, int pauseMillis, HttpClient http) {
      super("writer-" + index);
      setDaemon(true);
      this.index = index;
      this.type = type;
      this.key = String.format("w-%02d", index);
      this.port = port;
      this.pauseMillis = pauseMillis;
      this.http = http;
    }

    /** The entity's events partition, as Kafka's default partitioner places its key (as kfold does). */
    String partition() {
      return APP + "." + type + ".events-"
          + Utils.toPositive(Utils.murmur2(key.getBytes(StandardCharsets.UTF_8))) % PARTITIONS;
    }

    @Override
    public void run() {
      URI uri = URI.create("http://127.0.0.1:" + port + "/v1/" + type + "/" + key + "/events");
      long seq = 0;
      while (!stopAfterCurrent && !stopNow) {
        seq++;
        String body = "{\"events\":[{\"type\":\"Written\",\"payload\":{\"seq\":" + seq + ",\"writer\":\"" + key + "\"}}]}";
        HttpRequest request = HttpRequest.newBuilder(uri).timeout(REQUEST_TIMEOUT)
            .header("Content-Type", "application/json").header("Idempotency-Key", key + "-" + seq)
            .POST(HttpRequest.BodyPublishers.ofString(body)).build();
        while (true) {
          if (stopNow) {
            unacknowledged = seq;
            return;
          }
          attempts.incrementAndGet();
          String outcome;
          try {
            int status = http.send(request, HttpResponse.BodyHandlers.discarding()).statusCode();
            if (status == 200) {
              acknowledged(seq, System.nanoTime());
              break;
            }
            outcome = Integer.toString(status);
            if (status >= 400 && status < 500 && status != 408 && status != 429) {
              fatal = "write " + seq + " answered " + status;
              failures.computeIfAbsent(outcome, o -> new AtomicLong()).incrementAndGet();
              unacknowledged = seq;
              return;
            }
          } catch (IOException e) {
            outcome = e.getClass().getSimpleName();
          } catch (InterruptedException e) {
            unacknowledged = seq;
            return;
          }
          failures.computeIfAbsent(outcome, o -> new AtomicLong()).incrementAndGet();
          pause(RETRY_PAUSE_MILLIS);
        }
        pause(pauseMillis);
      }
    }

    private synchronized void acknowledged(long seq, long at) {
      if (acks == ackTimes.length) {
        ackTimes = Arrays.copyOf(ackTimes, acks * 2);
        ackSeqs = Arrays.copyOf(ackSeqs, acks * 2);
      }
      ackTimes[acks] = at;
      ackSeqs[acks] = seq;
      acks++;
    }

    /** The time of the first acknowledgement after {@code since}, -1 if none yet. */
    synchronized long firstAckAfter(long since) {
      int first = acks;
      while (first > 0 && ackTimes[first - 1] > since) {
        first--;
      }
      return first < acks ? ackTimes[first] : -1;
    }

    synchronized long[] acksBetween(long from, long to) {
      return Arrays.stream(ackTimes, 0, acks).filter(t -> t > from && t <= to).toArray();
    }

    synchronized long[] acknowledgedSeqs() {
      return Arrays.copyOf(ackSeqs, acks);
    }

    synchronized long acknowledged() {
      return acks;
    }

    void stopAfterCurrent() {
      stopAfterCurrent = true;
    }

    void stopNow() {
      stopNow = true;
      interrupt();
    }

    private void pause(long millis) {
      try {
        Thread.sleep(millis);
      } catch (InterruptedException e) {
        // stopNow: the loop sees it
      }
    }
  }

  /**
   * A log of the run, copied to the working folder (load-tests/target from run.sh), where it outlives the
   * run's own folder: what the nodes and the broker said during the failovers.
   */
  private static void keep(Path log, String name) {
    try {
      if (Files.exists(log)) {
        Files.copy(log, Path.of(name), StandardCopyOption.REPLACE_EXISTING);
      }
    } catch (IOException e) {
      System.out.println("WARNING: " + log + " not kept: " + e);
    }
  }

  private static Path writeNodeLogConfig(Path file) throws IOException {
    // kfold's INFO lines (assignments, failover actions) into each node's log; Kafka's clients at WARN.
    Files.writeString(file, String.join("\n",
        "shutdownHook=disable",
        "rootLogger.level=INFO",
        "rootLogger.appenderRef.out.ref=out",
        "appender.out.type=Console",
        "appender.out.name=out",
        "appender.out.layout.type=PatternLayout",
        "appender.out.layout.pattern=%d{HH:mm:ss.SSS} %-5p [%t] %c{1} - %m%n",
        "logger.kafka.name=org.apache.kafka",
        "logger.kafka.level=WARN",
        ""), StandardCharsets.UTF_8);
    return file;
  }

  private static double seconds(long since) {
    return (System.nanoTime() - since) / 1e9;
  }

  /** Whole MiB for the results file; null where the size is unknown. */
  private static Long mib(long bytes) {
    return bytes < 0 ? null : Math.round(bytes / (1024.0 * 1024.0));
  }

  private static double max(List<Double> values) {
    return values.stream().mapToDouble(Double::doubleValue).max().orElse(0);
  }

  /** Nearest rank: of 40 entities, the p99 is the 40th. */
  private static double percentile(List<Double> values, double p) {
    double[] sorted = values.stream().mapToDouble(Double::doubleValue).sorted().toArray();
    return sorted.length == 0 ? 0 : sorted[Math.max(0, (int) Math.ceil(p * sorted.length) - 1)];
  }

  private static String slashed(List<?> values) {
    return String.join(" / ", values.stream().map(String::valueOf).toList());
  }

  private static String table(Map<String, Object> run) {
    StringBuilder out = new StringBuilder();
    Map<?, ?> settings = (Map<?, ?>) run.get("settings");
    out.append(String.format("3 nodes (default configuration), %s x %s partitions, %s writers through node 0,"
            + " %s ms between a writer's writes; events partitions per node at the start: %s%n", settings.get("types"),
        settings.get("partitionsPerType"), settings.get("writers"), settings.get("pauseMillisBetweenWrites"),
        slashed((List<?>) run.get("initialAssignment"))));
    String format = "%-30s %10s %9s %9s %7s %16s %12s%n";
    out.append(String.format(format, "event", "all answer", "max stall", "p99 stall", "> 1 s", "node's entities",
        "others' max"));
    out.append(String.format(format, "", "s", "s", "s", "", "n, max s", "s"));
    for (Map<String, Object> event : Bench.list(run, "events")) {
      boolean nodeEvent = event.get("event").toString().contains("node ");
      out.append(String.format(format, event.get("event"), event.get("everyEntityAnsweredSeconds"),
          event.get("maxStallSeconds"), event.get("p99StallSeconds"),
          event.get("entitiesStalledOver1s") + "/" + event.get("entities"),
          nodeEvent ? event.get("nodesEntities") + ", " + event.get("nodesEntitiesMaxStallSeconds") : "-",
          nodeEvent ? event.get("otherEntitiesMaxStallSeconds") : "-"));
    }
    for (Map<String, Object> event : Bench.list(run, "events")) {
      if (event.containsKey("brokerAnsweringSecondsAfterKill")) {
        out.append(String.format("broker: answering again %s s after the kill; then the first acknowledged write after"
                + " %s s, /ready 200 on all nodes after %s s%n", event.get("brokerAnsweringSecondsAfterKill"),
            event.get("firstAcknowledgedWriteSecondsAfterBrokerBack"), event.get("allReadySecondsAfterBrokerBack")));
        out.append(String.format("  /ready while the broker was down, answers by status per node (-1: none in 5 s): %s;"
                + " first not 200 (s after the kill): %s%n", event.get("readyAnswersWhileDownByNode"),
            event.get("notReadySecondsAfterKillByNode")));
      }
      if (event.containsKey("nodeExitSeconds")) {
        out.append(String.format("SIGTERM: node 1 exited %s s after the signal%n", event.get("nodeExitSeconds")));
      }
    }
    for (Map<String, Object> restart : Bench.list(run, "restarts")) {
      out.append(String.format("restart of %s: /health after %s s, balanced after %s s, events partitions per node"
          + " %s%n", restart.get("restart"), restart.get("secondsToHealthy"), restart.get("secondsToBalanced"),
          slashed((List<?>) restart.get("assignment"))));
    }
    Map<?, ?> writes = (Map<?, ?>) run.get("writes");
    Map<?, ?> check = (Map<?, ?>) run.get("check");
    if (writes != null && check != null) {
      out.append(String.format("writes: %,d acknowledged, %,d attempts, failed attempts %s; history check: %s lost,"
              + " %s duplicated%n", (Long) writes.get("acknowledged"), (Long) writes.get("attempts"),
          writes.get("failedAttemptsByOutcome"), check.get("lost"), check.get("duplicated")));
    }
    String memoryFormat = "%-26s %18s %18s %18s %10s%n";
    out.append(String.format(memoryFormat, "RSS MiB (peak) after", "node 0", "node 1", "node 2", "broker"));
    for (Map<String, Object> sample : Bench.list(run, "memory")) {
      List<String> cells = new ArrayList<>();
      for (Object node : (List<?>) sample.get("nodes")) {
        Map<?, ?> rss = (Map<?, ?>) node;
        cells.add(rss.get("rssMiB") == null ? "down" : rss.get("rssMiB") + " (" + rss.get("peakRssMiB") + ")");
      }
      out.append(String.format(memoryFormat, sample.get("phase"), cells.get(0), cells.get(1), cells.get(2),
          sample.get("brokerRssMiB")));
    }
    return out.toString();
  }
}
