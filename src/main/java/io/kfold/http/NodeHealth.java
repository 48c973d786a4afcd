package io.kfold.http;

import io.kfold.config.NodeConfig;
import io.kfold.fold.FoldProgress;
import io.kfold.log.Supervisor;
import io.kfold.store.EntityStore;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.healthchecks.CheckResult;
import io.vertx.ext.healthchecks.HealthChecks;
import io.vertx.ext.healthchecks.Status;
import io.vertx.ext.web.RoutingContext;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.DescribeClusterOptions;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * {@code /health} (liveness) and {@code /ready} (readiness) as vertx-health-check procedures.
 *
 * <p>Liveness: one check per loop the {@link Supervisor} runs (the fold, each worker and its parking
 * lot, the node directory, ...), down only while a failure has closed it, and the store, open and
 * answering a read. Readiness: the broker answers, the fold loop is up, and the fold has read every
 * partition given to it to its end at least once ({@link FoldProgress#foldsAllAssigned}: steady
 * writes do not make it flap).
 *
 * <p>Every check ends by its own deadline, shorter than the registry's, and says why it is down in
 * its {@code detail}. The answer is Vert.x's rendering of the result ({@code checks}, {@code outcome})
 * with the fields clients read before these checks existed: {@code status}, {@code detail} naming
 * what is down, {@code loops}; {@code broker}, {@code lag}, {@code restoring}, {@code caughtUp}.
 * (Vert.x's {@code HealthCheckHandler} answers the result alone, without room for those fields.)
 */
final class NodeHealth {

  /** How long the broker has to answer a readiness check. */
  static final int BROKER_DEADLINE_MS = 2000;
  /** How long the store has to answer its read. */
  static final int STORE_DEADLINE_MS = 1000;
  /** The store's read: the offset of a topic no node folds, a key the store never has. */
  static final String PROBE_TOPIC = "_kfold.health";
  /** The registry's own timeout: a backstop behind each check's deadline. */
  private static final long REGISTRY_TIMEOUT_MS = BROKER_DEADLINE_MS + 2000;

  private final Vertx vertx;
  private final NodeConfig config;
  private final Supervisor supervisor;
  private final EntityStore store;
  private final FoldProgress progress;
  private final Admin admin;
  private final HealthChecks liveness;
  private final HealthChecks readiness;
  /** The loops registered as liveness checks; kept in step with the supervisor's on each call. */
  private final Set<String> loopChecks = new HashSet<>();

  NodeHealth(Vertx vertx, NodeConfig config, Supervisor supervisor, EntityStore store, FoldProgress progress, Admin admin) {
    this.vertx = vertx;
    this.config = config;
    this.supervisor = supervisor;
    this.store = store;
    this.progress = progress;
    this.admin = admin;
    liveness = HealthChecks.create(vertx).register("store", REGISTRY_TIMEOUT_MS, this::store);
    readiness = HealthChecks.create(vertx)
        .register("broker", REGISTRY_TIMEOUT_MS, this::broker)
        .register("fold", REGISTRY_TIMEOUT_MS, this::foldUp)
        .register("partitions", REGISTRY_TIMEOUT_MS, this::partitionsFolded);
  }

  /** {@code GET /health}: 200 while every loop runs and the store answers, else 503 naming what is down. */
  void health(RoutingContext ctx) {
    registerLoops();
    liveness.checkStatus().onComplete(result -> answer(ctx, result.succeeded() ? healthAnswer(result.result())
        : failed(result.cause())));
  }

  /** {@code GET /ready}: 200 once the broker answers and every assigned partition is folded, else 503 saying why. */
  void ready(RoutingContext ctx) {
    readiness.checkStatus().onComplete(result -> answer(ctx, result.succeeded() ? readyAnswer(result.result())
        : failed(result.cause())));
  }

  /** Loops start at different moments (the node directory after the HTTP API): each call registers those new since. */
  private void registerLoops() {
    Set<String> running = supervisor.loops().keySet();
    for (String loop : running) {
      if (loopChecks.add(loop)) {
        liveness.register(loop, REGISTRY_TIMEOUT_MS, promise -> loop(loop, promise));
      }
    }
    for (String gone : List.copyOf(loopChecks)) {
      if (!running.contains(gone)) {
        loopChecks.remove(gone);
        liveness.unregister(gone);
      }
    }
  }

  private void loop(String name, Promise<Status> promise) {
    Supervisor.Status status = supervisor.loops().get(name);
    if (status == null) {
      promise.complete(Status.KO(new JsonObject().put("detail", name + " (stopped)")));
      return;
    }
    JsonObject data = loopJson(status);
    if (status.down()) {
      data.put("detail", name + " (" + status.lastError() + ")");
    }
    promise.complete(status.down() ? Status.KO(data) : Status.OK(data));
  }

  private static JsonObject loopJson(Supervisor.Status status) {
    JsonObject loop = new JsonObject().put("state", status.state().name()).put("since", status.since().toString())
        .put("restarts", status.restarts());
    if (status.lastError() != null) {
      loop.put("lastError", status.lastError());
    }
    return loop;
  }

  /** The store is open and answers a read of an offset (a kind of key it reads on every start) within its deadline. */
  private void store(Promise<Status> promise) {
    if (!store.isOpen()) {
      promise.complete(Status.KO(new JsonObject().put("detail", "store (closed)")));
      return;
    }
    vertx.executeBlocking(() -> store.nextOffset(PROBE_TOPIC, 0), false)
        .timeout(STORE_DEADLINE_MS, TimeUnit.MILLISECONDS)
        .onComplete(read -> promise.complete(read.succeeded() ? Status.OK()
            : Status.KO(new JsonObject().put("detail", "store (" + read.cause() + ")"))));
  }

  /** The broker answers a description of the cluster; the call's own deadline ends it, so calls of a probe do not pile up. */
  private void broker(Promise<Status> promise) {
    Future.fromCompletionStage(admin.describeCluster(new DescribeClusterOptions().timeoutMs(BROKER_DEADLINE_MS)).nodes()
            .toCompletionStage(), vertx.getOrCreateContext())
        .timeout(BROKER_DEADLINE_MS + 1000, TimeUnit.MILLISECONDS)
        .onComplete(cluster -> {
          if (cluster.succeeded() && !cluster.result().isEmpty()) {
            promise.complete(Status.OK(new JsonObject().put("brokers", cluster.result().size())));
          } else {
            promise.complete(Status.KO(new JsonObject().put("detail", "the Kafka cluster at "
                + config.kafka().bootstrap() + " does not answer" + (cluster.failed() ? ": " + cluster.cause() : ""))));
          }
        });
  }

  private void foldUp(Promise<Status> promise) {
    Supervisor.Status fold = supervisor.loops().get("fold");
    if (fold != null && fold.state() == Supervisor.State.UP) {
      promise.complete(Status.OK());
    } else {
      promise.complete(Status.KO(new JsonObject().put("detail", fold == null ? "the fold has not started"
          : "the fold is " + fold.state() + (fold.lastError() == null ? "" : ": " + fold.lastError()))));
    }
  }

  private void partitionsFolded(Promise<Status> promise) {
    promise.complete(progress.foldsAllAssigned() ? Status.OK() : Status.KO(new JsonObject()
        .put("detail", "the fold has not yet read every partition given to this node to its end")));
  }

  /** 200 when every check is up, else 503; the body in JSON whatever the status. */
  private static void answer(RoutingContext ctx, JsonObject body) {
    ctx.response().setStatusCode("UP".equals(body.getString("outcome")) ? 200 : 503)
        .putHeader("content-type", "application/json").end(body.encode());
  }

  /** The registry itself failed (it does not when every check completes its promise, as these do). */
  private static JsonObject failed(Throwable cause) {
    return new JsonObject().put("status", "DOWN").put("outcome", "DOWN").put("detail", "the checks failed: " + cause);
  }

  private JsonObject healthAnswer(CheckResult result) {
    JsonObject loops = new JsonObject();
    supervisor.loops().forEach((name, status) -> loops.put(name, loopJson(status)));
    JsonObject extra = new JsonObject().put("loops", loops);
    String down = details(result, ", ");
    if (down != null) {
      extra.put("detail", "down: " + down);
    }
    return result.toJson().mergeIn(extra).put("status", result.getUp() ? "UP" : "DOWN");
  }

  private JsonObject readyAnswer(CheckResult result) {
    boolean brokerUp = result.getChecks().stream().anyMatch(check -> check.getId().equals("broker") && check.getUp());
    JsonObject lag = new JsonObject();
    progress.lag().forEach((partition, records) -> lag.put(partition.toString(), records));
    JsonObject restoring = new JsonObject();
    progress.restoring().forEach((partition, records) -> restoring.put(partition.toString(),
        new JsonObject().put("read", records[0]).put("of", records[1])));
    JsonObject extra = new JsonObject().put("broker", brokerUp ? "reachable" : "unreachable").put("lag", lag)
        .put("restoring", restoring).put("caughtUp", progress.caughtUp());
    String why = details(result, "; ");
    if (why != null) {
      extra.put("detail", why);
    }
    return result.toJson().mergeIn(extra).put("status", result.getUp() ? "READY" : "NOT_READY");
  }

  /** The {@code detail} of every check that is down, joined; null when none is. */
  private static String details(CheckResult result, String separator) {
    List<String> details = new ArrayList<>();
    for (CheckResult check : result.getChecks()) {
      if (!check.getUp()) {
        JsonObject data = check.getData();
        details.add(data != null && data.getString("detail") != null ? data.getString("detail")
            : check.getId() + " (" + (data == null ? "down" : data.encode()) + ")");
      }
    }
    return details.isEmpty() ? null : String.join(separator, details);
  }
}
