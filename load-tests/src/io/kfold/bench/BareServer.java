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
 * The baseline of the HTTP benchmark: a Vert.x HTTP server that reads each request's body and
 * answers it with the same fixed JSON, the ceiling of a Vert.x server on this machine. It is deployed
 * like kfold's HTTP API (one verticle, so one event loop) in a Vert.x instance of its own in the
 * benchmark JVM, so the difference between the two is what kfold does for a request: routing, the
 * read of the store for a GET; parsing, decide, the append to Kafka and the fold for a write.
 */
final class BareServer {

  /** Its own Vert.x instance: neither kfold's nor the generator's event loops. */
  private final Vertx vertx;
  private final Answering verticle;

  private BareServer(Vertx vertx, Buffer answer) {
    this.vertx = vertx;
    this.verticle = new Answering(answer);
  }

  /** A server that answers every request with {@code answer} (such as one of kfold's GET answers, byte for byte). */
  static BareServer launch(byte[] answer) throws TimeoutException {
    BareServer bare = new BareServer(Vertx.vertx(), Buffer.buffer(answer));
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
    private final Buffer answer;
    private volatile HttpServer server;

    Answering(Buffer answer) {
      this.answer = answer;
    }

    @Override
    public Future<?> start() {
      return vertx.createHttpServer(new HttpServerOptions().setHost("127.0.0.1").setPort(0))
          .requestHandler(request -> request.body().onSuccess(body -> request.response()
              .putHeader("content-type", "application/json")
              .putHeader("ETag", "\"1\"")
              .end(answer)))
          .listen()
          .onSuccess(s -> server = s);
    }
  }
}
