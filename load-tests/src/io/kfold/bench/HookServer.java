package io.kfold.bench;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;

import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The target of the effects benchmark: a Vert.x HTTP server in the benchmark JVM that answers every
 * request 200 at once and counts what reached it, per phase: calls, distinct {@code Idempotency-Key}
 * headers (deliveries; a key seen again is a re-delivery), bytes, connections, and the times of the
 * first and the last new key. One verticle, so all of it lives on one event loop.
 */
final class HookServer {

  static final String PATH = "/hook";

  /** What one phase delivered. Written on the server's event loop only; {@link #distinct} is read anywhere. */
  static final class Tally {
    final String name;
    long calls;
    long bytes;
    long withoutKey;
    long connectionsOpened;
    int openConnections;
    int maxOpenConnections;
    long firstNanos = -1;
    long lastNanos = -1;
    final Set<String> keys = new HashSet<>();
    volatile long distinct;

    Tally(String name) {
      this.name = name;
    }

    Map<String, Object> toJson() {
      Map<String, Object> json = new LinkedHashMap<>();
      json.put("calls", calls);
      json.put("distinctKeys", distinct);
      json.put("redeliveries", calls - distinct - withoutKey);
      json.put("callsWithoutKey", withoutKey);
      json.put("bytes", bytes);
      json.put("meanBodyBytes", calls == 0 ? 0 : Math.round((double) bytes / calls));
      json.put("connectionsOpened", connectionsOpened);
      json.put("maxOpenConnections", maxOpenConnections);
      double seconds = (lastNanos - firstNanos) / 1e9;
      json.put("firstToLastSeconds", Report.round(seconds, 3));
      // The first delivery starts the clock, so it is not counted in the rate.
      json.put("deliveredPerSecond", seconds > 0 ? Math.round((distinct - 1) / seconds) : null);
      return json;
    }
  }

  private final Vertx vertx;
  private final Receiving verticle = new Receiving();

  private HookServer(Vertx vertx) {
    this.vertx = vertx;
  }

  /** Starts the server in a Vert.x instance of its own. */
  static HookServer launch() throws TimeoutException {
    HookServer hook = new HookServer(Vertx.vertx());
    hook.vertx.deployVerticle(hook.verticle).await(30, TimeUnit.SECONDS);
    return hook;
  }

  int port() {
    return verticle.server.actualPort();
  }

  String url() {
    return "http://127.0.0.1:" + port() + PATH;
  }

  /** Counts from now on into a new tally. */
  Tally begin(String name) throws Exception {
    Tally tally = new Tally(name);
    onLoop(() -> {
      tally.openConnections = verticle.current.openConnections;
      verticle.current = tally;
      return null;
    });
    return tally;
  }

  /** The tally as the event loop sees it now. */
  Map<String, Object> snapshot(Tally tally) throws Exception {
    return onLoop(tally::toJson);
  }

  void close() throws TimeoutException {
    vertx.close().await(30, TimeUnit.SECONDS);
  }

  private <T> T onLoop(java.util.concurrent.Callable<T> work) throws Exception {
    CompletableFuture<T> result = new CompletableFuture<>();
    verticle.context.runOnContext(v -> {
      try {
        result.complete(work.call());
      } catch (Exception e) {
        result.completeExceptionally(e);
      }
    });
    return result.get(10, TimeUnit.SECONDS);
  }

  private static final class Receiving extends VerticleBase {
    private volatile HttpServer server;
    private volatile Context context;
    private Tally current = new Tally("none");

    @Override
    public Future<?> start() {
      context = vertx.getOrCreateContext();
      return vertx.createHttpServer(new HttpServerOptions().setHost("127.0.0.1").setPort(0))
          .connectionHandler(connection -> {
            Tally tally = current;
            tally.connectionsOpened++;
            tally.openConnections++;
            tally.maxOpenConnections = Math.max(tally.maxOpenConnections, tally.openConnections);
            connection.closeHandler(v -> current.openConnections--);
          })
          .requestHandler(request -> request.body().onSuccess(body -> {
            Tally tally = current;
            tally.calls++;
            tally.bytes += body.length();
            String key = request.getHeader("Idempotency-Key");
            if (key == null) {
              tally.withoutKey++;
            } else if (tally.keys.add(key)) {
              long now = System.nanoTime();
              if (tally.firstNanos < 0) {
                tally.firstNanos = now;
              }
              tally.lastNanos = now;
              tally.distinct = tally.keys.size();
            }
            request.response().setStatusCode(200).end();
          }))
          .listen()
          .onSuccess(s -> server = s);
    }
  }
}
