package io.kfold.http;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.types.Envelopes;
import io.kfold.entity.KfoldException;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.vertx.core.buffer.Buffer;
import io.vertx.ext.web.RoutingContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Map;

/** The one place where failures become {@code application/problem+json} answers (RFC 9457). */
final class Problems {

  private static final Logger LOG = LoggerFactory.getLogger(Problems.class);

  private Problems() {}

  /** The router's failure handler: typed errors keep their status, anything else is a logged 500. */
  static void handle(RoutingContext ctx) {
    Throwable failure = ctx.failure();
    if (failure instanceof KfoldException e) {
      send(ctx, e);
    } else if (failure == null && ctx.statusCode() == 413) {
      send(ctx, new KfoldException(413, "Payload too large", "the request body is over the limit of this node",
          Map.of()));
    } else if (failure == null && ctx.statusCode() > 0) {
      int status = ctx.statusCode();
      send(ctx, new KfoldException(status, HttpResponseStatus.valueOf(status).reasonPhrase(),
          ctx.request().method() + " " + ctx.request().path() + ": " + HttpResponseStatus.valueOf(status).reasonPhrase(),
          Map.of()));
    } else {
      LOG.error("{} {} failed", ctx.request().method(), ctx.request().path(), failure);
      send(ctx, new KfoldException(500, "Internal error", "the node failed to handle the request; see its log",
          Map.of()));
    }
  }

  static void send(RoutingContext ctx, KfoldException e) {
    if (ctx.response().ended()) {
      return;
    }
    ObjectNode body = e.problem();
    ctx.response()
        .setStatusCode(e.status())
        .putHeader("content-type", "application/problem+json")
        .end(Buffer.buffer(Envelopes.toBytes(body)));
  }
}
