package io.kfold.effects;

import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.json.JsonObject;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;
import java.util.function.ToLongFunction;

/**
 * A real HTTP server standing for a service that side effects call. It records every call it
 * receives, in the order received, with the answer it gave ({@link #calls()}): what kfold did is
 * read from there. It can fail a share of the calls with 500s, connection resets and late answers
 * (after applying, as a slow service would), answer every call 503 ({@link #down}), answer late
 * ({@link #answerAfterMs}), or refuse some bodies with 422.
 *
 * <p>Besides, it keeps what a service that honours {@code Idempotency-Key} would have applied:
 * each key's first applied call only ({@link #applied}, {@link #appliedVersions}). That view is
 * the service's own de-duplication, so a test of kfold's duties must not rest on it.
 */
final class TargetServer implements AutoCloseable {

  /** How the server answered a call. {@code OK} is a prompt 2xx: the only answer kfold can take for success. */
  enum Answer { OK, LATE, FAILED, RESET, DOWN, REFUSED }

  /** One call: its place in the order received, when it came ({@link System#nanoTime}), its key and body. */
  record Call(int seq, long nanos, String key, JsonObject body, Answer answer) {
    /** The entity key of the change the body is (the whole change, as kfold sends it by default). */
    String entity() {
      return body.getJsonObject("event").getString("key");
    }

    long version() {
      return body.getJsonObject("event").getLong("version");
    }

    /** The change's id, {@code <key>:<version>}. */
    String changeId() {
      return entity() + ":" + version();
    }

    /** The event's id, which kfold sends as the Idempotency-Key. */
    String eventId() {
      return body.getJsonObject("event").getString("id");
    }
  }

  /** Every call received, counted by idempotency key. */
  final Map<String, AtomicInteger> calls = new ConcurrentHashMap<>();
  /** A service that honours idempotency keys: the changes applied, each key's first time only, in order, by entity key. */
  final Map<String, List<Long>> appliedVersions = new ConcurrentHashMap<>();
  /** The same, by entity type and key: {@code <type>/<key>}. */
  final Map<String, List<Long>> appliedVersionsByEntity = new ConcurrentHashMap<>();
  final Map<String, JsonObject> applied = new ConcurrentHashMap<>();
  volatile double failureRate;
  /** Down: every call answers 503 and nothing is applied. */
  volatile boolean down;
  volatile long lateMs = 1500;
  /** How long after a successful call to answer it (it is applied at once), by body; within the caller's timeout. */
  volatile ToLongFunction<JsonObject> answerAfterMs = body -> 0;
  volatile Predicate<JsonObject> refuse = body -> false;

  private final List<Call> received = new ArrayList<>();
  private final Vertx vertx;
  private final HttpServer server;
  private final Random random = new Random(3);

  TargetServer(Vertx vertx) throws Exception {
    this.vertx = vertx;
    this.server = vertx.createHttpServer().requestHandler(request -> request.body()
        .onSuccess(buffer -> handle(request, buffer.toJsonObject())))
        .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
  }

  private void handle(HttpServerRequest request, JsonObject body) {
    String key = request.getHeader("Idempotency-Key");
    long nanos = System.nanoTime();
    calls.computeIfAbsent(key, k -> new AtomicInteger()).incrementAndGet();
    double dice;
    synchronized (random) {
      dice = random.nextDouble();
    }
    Answer answer;
    if (down) {
      answer = Answer.DOWN;
    } else if (dice < failureRate / 3) {
      answer = Answer.FAILED;
    } else if (dice < failureRate * 2 / 3) {
      answer = Answer.RESET;
    } else if (refuse.test(body)) {
      answer = Answer.REFUSED;
    } else {
      answer = dice < failureRate ? Answer.LATE : Answer.OK;
    }
    record(nanos, key, body, answer);  // before answering: a call the caller saw answered is always on record
    switch (answer) {
      case DOWN -> request.response().setStatusCode(503).end("down");
      case FAILED -> request.response().setStatusCode(500).end("injected failure");
      case RESET -> request.connection().close();  // no answer at all
      case REFUSED -> request.response().setStatusCode(422).end("refused");
      case LATE -> {
        apply(key, body);
        vertx.setTimer(lateMs, id -> request.response().end("late"));  // applied, but answered too late
      }
      case OK -> {
        apply(key, body);
        long delay = answerAfterMs.applyAsLong(body);
        if (delay > 0) {
          vertx.setTimer(delay, id -> request.response().end("ok"));
        } else {
          request.response().end("ok");
        }
      }
    }
  }

  private synchronized void record(long nanos, String key, JsonObject body, Answer answer) {
    received.add(new Call(received.size(), nanos, key, body, answer));
  }

  /** Every call received so far, in the order received. */
  synchronized List<Call> calls() {
    return List.copyOf(received);
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
