package io.kfold.bench;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.types.Envelopes;
import io.kfold.fold.FoldProgress;
import io.kfold.store.StoredEntity;
import io.vertx.core.Vertx;
import jdk.jfr.Configuration;
import jdk.jfr.Recording;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * kfold itself: a whole node started on a fresh store, folding the input from its first offset,
 * exactly as a new node joining an existing log would.
 *
 * <p>The clock starts before {@link NodeRuntime#start} so that everything a new node does before it
 * folds (its topics, opening RocksDB, joining the group) counts, and stops when the fold has applied
 * every event. The fold counts an event as applied before its batch is written, so the run also
 * waits for the node to report itself caught up (written, lag 0) and then checks the states.
 */
final class KfoldRun {

  private static final long TIMEOUT_SECONDS = 900;
  /** Polling the progress counter more often would take CPU from the fold on a small machine. */
  private static final long POLL_MILLIS = 2;

  private KfoldRun() {}

  /**
   * The same run in a JVM of its own, as the Streams baseline runs, so that kfold's fold starts cold
   * too instead of with the classes the raw consumer and earlier runs warmed in the benchmark JVM.
   */
  static Map<String, Object> inOwnJvm(String bootstrap, Input input, int maxPollRecords, boolean transactions,
                                      Path dataDir, long brokerPid, Path jfrFile, Path workDir) throws Exception {
    return inOwnJvm(bootstrap, input.app, List.of("--events", Long.toString(input.events),
        "--keys", Integer.toString(input.keys)), Map.of(), maxPollRecords, transactions, dataDir, brokerPid, jfrFile,
        workDir);
  }

  /**
   * The orders of the query benchmark, folded in a JVM of its own with {@code env} added to the node's
   * configuration (such as {@code KFOLD_CONFIG}, a configuration file of the run); a flight recording
   * of it to {@code jfrFile} unless it is null.
   */
  static Map<String, Object> inOwnJvm(String bootstrap, OrderInput input, Map<String, String> env,
                                      int maxPollRecords, Path dataDir, long brokerPid, Path jfrFile, Path workDir)
      throws Exception {
    return inOwnJvm(bootstrap, input.app, List.of("--events", Long.toString(input.entities),
        "--orders-customers", Integer.toString(input.customers)), env, maxPollRecords, true, dataDir, brokerPid,
        jfrFile, workDir);
  }

  /**
   * The orders of the views benchmark, folded in a JVM of its own with {@code env} added to the node's
   * configuration. With {@code checkRows}, the check also reads a sample of the {@code customers} view's
   * rows through the node's HTTP API and compares them with the recomputation from the input, and
   * the clock stops only when every row is complete. A flight recording to {@code jfrFile} unless it is null.
   */
  static Map<String, Object> inOwnJvm(String bootstrap, ViewInput input, Map<String, String> env, boolean checkRows,
                                      int maxPollRecords, Path dataDir, long brokerPid, Path jfrFile, Path workDir)
      throws Exception {
    return inOwnJvm(bootstrap, input.app, List.of("--events", Long.toString(input.events()),
        "--view-orders", Long.toString(input.orders), "--view-rows", Boolean.toString(checkRows)), env,
        maxPollRecords, true, dataDir, brokerPid, jfrFile, workDir);
  }

  private static Map<String, Object> inOwnJvm(String bootstrap, String app, List<String> inputArguments,
                                              Map<String, String> env, int maxPollRecords, boolean transactions,
                                              Path dataDir, long brokerPid, Path jfrFile, Path workDir)
      throws Exception {
    Path resultFile = workDir.resolve(app + "-kfold-result.json");
    List<String> arguments = new ArrayList<>(List.of(
        "--bootstrap", bootstrap,
        "--app", app,
        "--max-poll-records", Integer.toString(maxPollRecords),
        "--transactions", Boolean.toString(transactions),
        "--data-dir", dataDir.toString(),
        "--broker-pid", Long.toString(brokerPid),
        "--result", resultFile.toString()));
    arguments.addAll(inputArguments);
    if (jfrFile != null) {
      arguments.addAll(List.of("--jfr", jfrFile.toString()));
    }
    for (Map.Entry<String, String> variable : env.entrySet()) {
      arguments.addAll(List.of("--env", variable.getKey() + "=" + variable.getValue()));
    }
    ChildJvm.run(ChildJvm.command(System.getProperty("java.class.path"), KfoldRun.class.getName(), arguments),
        TIMEOUT_SECONDS + 120, "kfold's fold");
    return ChildJvm.readResult(resultFile);
  }

  /** The entry point of {@link #inOwnJvm}: runs the fold and writes its results to {@code --result}. */
  public static void main(String[] args) throws Exception {
    Map<String, String> options = new LinkedHashMap<>();
    Map<String, String> env = new LinkedHashMap<>();
    for (int i = 0; i + 1 < args.length; i += 2) {
      if (args[i].equals("--env")) {
        String variable = args[i + 1];
        env.put(variable.substring(0, variable.indexOf('=')), variable.substring(variable.indexOf('=') + 1));
      } else {
        options.put(args[i], args[i + 1]);
      }
    }
    String app = options.get("--app");
    long events = Long.parseLong(options.get("--events"));
    StateCheck check;
    Completion completion = (node, applied) -> applied >= events;
    if (options.containsKey("--view-orders")) {
      ViewInput orders = new ViewInput(app, Long.parseLong(options.get("--view-orders")));
      boolean rows = Boolean.parseBoolean(options.get("--view-rows"));
      check = node -> ViewChecks.check(node, orders, rows);
      if (rows) {
        completion = ViewChecks.rowsComplete(orders, events, env);
      }
    } else if (options.containsKey("--orders-customers")) {
      OrderInput orders = new OrderInput(app, events, Integer.parseInt(options.get("--orders-customers")));
      check = node -> checkOrders(node, orders);
    } else {
      Input input = new Input(app, events, Integer.parseInt(options.get("--keys")));
      check = node -> checkStates(node, input);
    }
    String jfr = options.get("--jfr");
    Map<String, Object> result = run(options.get("--bootstrap"), app, events, env,
        Integer.parseInt(options.get("--max-poll-records")), Boolean.parseBoolean(options.get("--transactions")),
        Path.of(options.get("--data-dir")), Long.parseLong(options.get("--broker-pid")),
        jfr == null ? null : Path.of(jfr), false, completion, check);
    Report.writeJson(Path.of(options.get("--result")), result);
  }

  /** How a run checks the states its node ended with; answers how many it checked. */
  interface StateCheck {
    int check(NodeRuntime node) throws Exception;
  }

  /**
   * When the clock of a fold stops. By default when the fold has applied as many events as the input
   * holds; a node that folds views also applies their contributions, so its run says itself when its
   * work is done (see {@link ViewChecks#rowsComplete}).
   */
  interface Completion {
    boolean done(NodeRuntime node, long applied) throws Exception;

    /** What the run adds to its results about how it got there. */
    default Map<String, Object> details(long startNanos) {
      return Map.of();
    }
  }

  /**
   * With {@code restore}, the node is expected to restore its partitions from their changelogs and
   * fold nothing: the clock stops when it is caught up, and its rate is the input's events over that time.
   */
  static Map<String, Object> run(String bootstrap, Input input, int maxPollRecords, boolean transactions, Path dataDir,
                                 long brokerPid, Path jfrFile, boolean restore) throws Exception {
    return run(bootstrap, input.app, input.events, Map.of(), maxPollRecords, transactions, dataDir, brokerPid, jfrFile,
        restore, (node, applied) -> applied >= (restore ? 0 : input.events), node -> checkStates(node, input));
  }

  /**
   * A fold of {@code events} events of {@code app}'s topics, {@code extraEnv} added to the node's
   * configuration; the clock stops when {@code completion} says so.
   */
  static Map<String, Object> run(String bootstrap, String app, long events, Map<String, String> extraEnv,
                                 int maxPollRecords, boolean transactions, Path dataDir, long brokerPid, Path jfrFile,
                                 boolean restore, Completion completion, StateCheck check) throws Exception {
    Map<String, String> env = Bench.nodeEnv(app, dataDir, bootstrap);
    env.putAll(extraEnv);
    env.put("KFOLD_FOLD_MAX_POLL_RECORDS", Integer.toString(maxPollRecords));
    env.put("KFOLD_FOLD_TRANSACTIONS", Boolean.toString(transactions));
    NodeConfig config = NodeConfig.load(env);

    Recording recording = null;
    if (jfrFile != null) {
      recording = new Recording(Configuration.getConfiguration("profile"));
      recording.setToDisk(true);
      recording.start();
    }
    Vertx vertx = Vertx.vertx();
    Map<String, Object> result = new LinkedHashMap<>();
    try {
      Meter meter = Meter.start(brokerPid);
      long start = System.nanoTime();
      NodeRuntime node = NodeRuntime.start(vertx, config).await(120, TimeUnit.SECONDS);
      long started = System.nanoTime();
      FoldProgress progress = node.progress();
      try {
        long deadline = start + TimeUnit.SECONDS.toNanos(TIMEOUT_SECONDS);
        long first = -1;
        long firstApplied = 0;
        long applied;
        while (!completion.done(node, applied = progress.applied.sum())) {
          if (first < 0 && applied > 0) {
            first = System.nanoTime();
            firstApplied = applied;
          }
          checkAlive(progress, applied, events, deadline);
          Thread.sleep(POLL_MILLIS);
        }
        if (restore) {
          while (!progress.caughtUp()) {
            checkAlive(progress, applied, events, deadline);
            Thread.sleep(POLL_MILLIS);
          }
          if (progress.applied.sum() != 0) {
            throw new IllegalStateException("the restore folded " + progress.applied.sum() + " events again");
          }
        }
        // The input is the measure (the completion may stop the clock once the rows are complete too).
        applied = events;
        long all = System.nanoTime();
        Map<String, Object> resources = meter.sample();
        if (first < 0) {  // everything was applied between two looks
          first = all;
          firstApplied = applied;
        }
        while (!progress.caughtUp()) {
          checkAlive(progress, applied, events, deadline);
          Thread.sleep(POLL_MILLIS);
        }
        long caughtUp = System.nanoTime();
        if (recording != null) {
          recording.stop();
          recording.dump(jfrFile);
        }

        double totalSeconds = (all - start) / 1e9;
        double steadySeconds = (all - first) / 1e9;
        result.put("events", applied);
        long contributions = progress.contributionsApplied.sum();
        if (contributions > 0) {
          result.put("contributionsApplied", contributions);
        }
        result.put("maxPollRecords", maxPollRecords);
        result.put("eventsPerSecond", Math.round(applied / totalSeconds));
        result.put("secondsToAllApplied", Report.round(totalSeconds, 3));
        result.put("secondsToStarted", Report.round((started - start) / 1e9, 3));
        result.put("secondsToFirstApplied", Report.round((first - start) / 1e9, 3));
        // The same definition as the baseline's rate: from the first visible progress to the last event.
        result.put("eventsPerSecondFirstToLast",
            steadySeconds > 0 ? Math.round((applied - Math.min(firstApplied, applied)) / steadySeconds) : null);
        result.putAll(completion.details(start));
        result.put("secondsToCaughtUp", Report.round((caughtUp - start) / 1e9, 3));
        result.put("batches", progress.batches.sum());
        result.put("duplicates", progress.duplicates.sum());
        result.put("conflicts", progress.conflicts.sum());
        result.put("deadLettered", progress.deadLettered.sum());
        result.put("statesChecked", check.check(node));
        result.put("resources", resources);
        if (jfrFile != null) {
          result.put("jfr", jfrFile.getFileName().toString());
        }
      } finally {
        node.stop().await(120, TimeUnit.SECONDS);
      }
    } finally {
      vertx.close().await(60, TimeUnit.SECONDS);
      if (recording != null) {
        recording.close();
      }
    }
    return result;
  }

  private static void checkAlive(FoldProgress progress, long applied, long events, long deadline) {
    if (System.nanoTime() > deadline) {
      throw new IllegalStateException("the fold applied " + applied + " of " + events + " events in "
          + TIMEOUT_SECONDS + " s");
    }
  }

  /**
   * A fast wrong fold is worthless: a sample of entities must end at the last version with the last
   * {@code n}, and with all the fields the input rotates through. Returns how many were checked.
   */
  private static int checkStates(NodeRuntime node, Input input) throws Exception {
    long expectedVersion = input.eventsPerKey();
    int step = Math.max(1, input.keys / 100);
    List<String> wrong = new ArrayList<>();
    int checked = 0;
    for (long entity = 0; entity < input.keys; entity += step) {
      String key = Input.key(entity);
      StoredEntity stored = node.store().get(Input.TYPE, key);
      checked++;
      if (stored == null) {
        wrong.add(key + " has no state");
        continue;
      }
      JsonNode state = Envelopes.parse(stored.state());
      int expectedFields = (int) Math.min(expectedVersion, Input.FIELDS) + 1;
      if (stored.version() != expectedVersion || state.path("n").asLong(-1) != expectedVersion - 1
          || state.size() != expectedFields) {
        wrong.add(key + " is at version " + stored.version() + " with " + state);
      }
    }
    if (!wrong.isEmpty()) {
      throw new IllegalStateException(wrong.size() + " of " + checked + " sampled entities have a wrong state, e.g. "
          + wrong.get(0));
    }
    return checked;
  }

  /**
   * The orders of the query benchmark: a sample must be placed (version 1) by the customer the input
   * gave them. Returns how many were checked.
   */
  private static int checkOrders(NodeRuntime node, OrderInput input) throws Exception {
    long step = Math.max(1, input.entities / 100);
    List<String> wrong = new ArrayList<>();
    int checked = 0;
    for (long order = 0; order < input.entities; order += step) {
      String key = OrderInput.key(order);
      StoredEntity stored = node.store().get(OrderInput.TYPE, key);
      checked++;
      if (stored == null) {
        wrong.add(key + " has no state");
        continue;
      }
      JsonNode state = Envelopes.parse(stored.state());
      if (stored.version() != 1 || !state.path("status").asText().equals("placed")
          || !state.path("customerEmail").asText().equals(input.customerOf(order))) {
        wrong.add(key + " is at version " + stored.version() + " with " + state);
      }
    }
    if (!wrong.isEmpty()) {
      throw new IllegalStateException(wrong.size() + " of " + checked + " sampled orders have a wrong state, e.g. "
          + wrong.get(0));
    }
    return checked;
  }
}
