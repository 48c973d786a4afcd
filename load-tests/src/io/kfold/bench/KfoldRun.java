package io.kfold.bench;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.KfoldConfig;
import io.kfold.KfoldNode;
import io.kfold.entity.Envelopes;
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
 * <p>The clock starts before {@link KfoldNode#start} so that everything a new node does before it
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
    Path resultFile = workDir.resolve(input.app + "-kfold-result.json");
    List<String> arguments = new ArrayList<>(List.of(
        "--bootstrap", bootstrap,
        "--app", input.app,
        "--events", Long.toString(input.events),
        "--keys", Integer.toString(input.keys),
        "--max-poll-records", Integer.toString(maxPollRecords),
        "--transactions", Boolean.toString(transactions),
        "--data-dir", dataDir.toString(),
        "--broker-pid", Long.toString(brokerPid),
        "--result", resultFile.toString()));
    if (jfrFile != null) {
      arguments.addAll(List.of("--jfr", jfrFile.toString()));
    }
    ChildJvm.run(ChildJvm.command(System.getProperty("java.class.path"), KfoldRun.class.getName(), arguments),
        TIMEOUT_SECONDS + 120, "kfold's fold");
    return ChildJvm.readResult(resultFile);
  }

  /** The entry point of {@link #inOwnJvm}: runs the fold and writes its results to {@code --result}. */
  public static void main(String[] args) throws Exception {
    Map<String, String> options = new LinkedHashMap<>();
    for (int i = 0; i + 1 < args.length; i += 2) {
      options.put(args[i], args[i + 1]);
    }
    Input input = new Input(options.get("--app"), Long.parseLong(options.get("--events")),
        Integer.parseInt(options.get("--keys")));
    String jfr = options.get("--jfr");
    Map<String, Object> result = run(options.get("--bootstrap"), input, Integer.parseInt(options.get("--max-poll-records")),
        Boolean.parseBoolean(options.get("--transactions")), Path.of(options.get("--data-dir")),
        Long.parseLong(options.get("--broker-pid")), jfr == null ? null : Path.of(jfr), false);
    Report.writeJson(Path.of(options.get("--result")), result);
  }


  /**
   * With {@code restore}, the node is expected to restore its partitions from their changelogs and
   * fold nothing: the clock stops when it is caught up, and its rate is the input's events over that time.
   */
  static Map<String, Object> run(String bootstrap, Input input, int maxPollRecords, boolean transactions, Path dataDir,
                                 long brokerPid, Path jfrFile, boolean restore) throws Exception {
    Map<String, String> env = Bench.nodeEnv(input.app, dataDir, bootstrap);
    env.put("KFOLD_FOLD_MAX_POLL_RECORDS", Integer.toString(maxPollRecords));
    env.put("KFOLD_FOLD_TRANSACTIONS", Boolean.toString(transactions));
    KfoldConfig config = KfoldConfig.load(env);

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
      KfoldNode node = KfoldNode.start(vertx, config).await(120, TimeUnit.SECONDS);
      long started = System.nanoTime();
      FoldProgress progress = node.progress();
      try {
        long deadline = start + TimeUnit.SECONDS.toNanos(TIMEOUT_SECONDS);
        long first = -1;
        long firstApplied = 0;
        long applied;
        while ((applied = progress.applied.sum()) < (restore ? 0 : input.events)) {
          if (first < 0 && applied > 0) {
            first = System.nanoTime();
            firstApplied = applied;
          }
          checkAlive(progress, applied, input, deadline);
          Thread.sleep(POLL_MILLIS);
        }
        if (restore) {
          while (!progress.caughtUp()) {
            checkAlive(progress, applied, input, deadline);
            Thread.sleep(POLL_MILLIS);
          }
          if (progress.applied.sum() != 0) {
            throw new IllegalStateException("the restore folded " + progress.applied.sum() + " events again");
          }
          applied = input.events;
        }
        long all = System.nanoTime();
        Map<String, Object> resources = meter.sample();
        if (first < 0) {  // everything was applied between two looks
          first = all;
          firstApplied = applied;
        }
        while (!progress.caughtUp()) {
          checkAlive(progress, applied, input, deadline);
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
        result.put("maxPollRecords", maxPollRecords);
        result.put("eventsPerSecond", Math.round(applied / totalSeconds));
        result.put("secondsToAllApplied", Report.round(totalSeconds, 3));
        result.put("secondsToStarted", Report.round((started - start) / 1e9, 3));
        result.put("secondsToFirstApplied", Report.round((first - start) / 1e9, 3));
        // The same definition as the baseline's rate: from the first visible progress to the last event.
        result.put("eventsPerSecondFirstToLast",
            steadySeconds > 0 ? Math.round((applied - firstApplied) / steadySeconds) : null);
        result.put("secondsToCaughtUp", Report.round((caughtUp - start) / 1e9, 3));
        result.put("batches", progress.batches.sum());
        result.put("duplicates", progress.duplicates.sum());
        result.put("conflicts", progress.conflicts.sum());
        result.put("deadLettered", progress.deadLettered.sum());
        result.put("statesChecked", checkStates(node, input));
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

  private static void checkAlive(FoldProgress progress, long applied, Input input, long deadline) {
    if (System.nanoTime() > deadline) {
      throw new IllegalStateException("the fold applied " + applied + " of " + input.events + " events in "
          + TIMEOUT_SECONDS + " s");
    }
  }

  /**
   * A fast wrong fold is worthless: a sample of entities must end at the last version with the last
   * {@code n}, and with all the fields the input rotates through. Returns how many were checked.
   */
  private static int checkStates(KfoldNode node, Input input) throws Exception {
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
}
