package io.kfold.bench;

import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The baseline of the commands benchmark: a Vert.x HTTP server that reads each request's body and
 * answers it with the same small JSON. It is deployed like kfold's HTTP API (one verticle, so one
 * event loop) in a Vert.x instance of its own in the benchmark JVM, so the difference between the
 * two is what kfold does for a command: routing, parsing, decide, the append to Kafka, the fold.
 */
final class BareServer {

  private static final Buffer ANSWER = Buffer.buffer("{\"key\":\"bare\",\"version\":1,\"events\":[]}");

  /** Its own Vert.x instance: neither kfold's nor the generator's event loops. */
  private final Vertx vertx;
  private final Answering verticle = new Answering();

  private BareServer(Vertx vertx) {
    this.vertx = vertx;
  }

  static BareServer launch() throws TimeoutException {
    BareServer bare = new BareServer(Vertx.vertx());
    bare.vertx.deployVerticle(bare.verticle).await(30, TimeUnit.SECONDS);
    return bare;
  }

  int port() {
    return verticle.server.actualPort();
  }

  void close() throws TimeoutException {
    vertx.close().await(30, TimeUnit.SECONDS);
  }

  private static final class Answering extends VerticleBase {
    private volatile HttpServer server;

    @Override
    public Future<?> start() {
      return vertx.createHttpServer(new HttpServerOptions().setHost("127.0.0.1").setPort(0))
          .requestHandler(request -> request.body().onSuccess(body -> request.response()
              .putHeader("content-type", "application/json")
              .putHeader("ETag", "\"1\"")
              .end(ANSWER)))
          .listen()
          .onSuccess(s -> server = s);
    }
  }
}
