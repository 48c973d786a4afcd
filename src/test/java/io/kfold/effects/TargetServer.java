package io.kfold.effects;

import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.json.JsonObject;

import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;

/**
 * A real HTTP server standing for a service that side effects call. It applies each
 * Idempotency-Key once, and can fail a share of the calls with 500s, connection resets and late
 * answers (after applying, as a slow service would), or refuse some bodies with 422.
 */
final class TargetServer implements AutoCloseable {

  /** Every call received, by idempotency key. */
  final Map<String, AtomicInteger> calls = new ConcurrentHashMap<>();
  /** The changes applied, first time only, in the order applied, by entity key. */
  final Map<String, List<Long>> appliedVersions = new ConcurrentHashMap<>();
  /** The same, by entity type and key: {@code <type>/<key>}. */
  final Map<String, List<Long>> appliedVersionsByEntity = new ConcurrentHashMap<>();
  final Map<String, JsonObject> applied = new ConcurrentHashMap<>();
  volatile double failureRate;
  /** Down: every call answers 503 and nothing is applied. */
  volatile boolean down;
  volatile long lateMs = 1500;
  volatile Predicate<JsonObject> refuse = body -> false;

  private final Vertx vertx;
  private final HttpServer server;
  private final Random random = new Random(3);

  TargetServer(Vertx vertx) throws Exception {
    this.vertx = vertx;
    this.server = vertx.createHttpServer().requestHandler(request -> request.body().onSuccess(buffer -> {
      String key = request.getHeader("Idempotency-Key");
      calls.computeIfAbsent(key, k -> new AtomicInteger()).incrementAndGet();
      JsonObject body = buffer.toJsonObject();
      double dice;
      synchronized (random) {
        dice = random.nextDouble();
      }
      if (down) {
        request.response().setStatusCode(503).end("down");
      } else if (dice < failureRate / 3) {
        request.response().setStatusCode(500).end("injected failure");
      } else if (dice < failureRate * 2 / 3) {
        request.connection().close();  // a reset: no answer at all
      } else if (refuse.test(body)) {
        request.response().setStatusCode(422).end("refused");
      } else {
        apply(key, body);
        if (dice < failureRate) {
          vertx.setTimer(lateMs, id -> request.response().end("late"));  // applied, but answered too late
        } else {
          request.response().end("ok");
        }
      }
    })).listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
  }

  private synchronized void apply(String key, JsonObject change) {
    if (applied.putIfAbsent(key, change) == null) {
      JsonObject event = change.getJsonObject("event");
      appliedVersions.computeIfAbsent(event.getString("key"), k -> new CopyOnWriteArrayList<>()).add(event.getLong("version"));
      appliedVersionsByEntity.computeIfAbsent(event.getString("entity") + "/" + event.getString("key"),
          k -> new CopyOnWriteArrayList<>()).add(event.getLong("version"));
    }
  }

  String url() {
    return "http://127.0.0.1:" + server.actualPort() + "/hook";
  }

  int deliveries() {
    return calls.values().stream().mapToInt(AtomicInteger::get).sum();
  }

  @Override
  public void close() throws Exception {
    server.close().await(10, TimeUnit.SECONDS);
  }
}
