package io.kfold.http;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.entity.EntityTypes;
import io.kfold.entity.Envelopes;
import io.kfold.fold.FoldWatch;
import io.kfold.store.EntityStore;
import io.kfold.store.StoredEntity;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.ext.web.RoutingContext;

import java.util.ArrayList;
import java.util.List;

/**
 * {@code GET /v1/{type}/{id}/changes}: the entity's changes as Server-Sent Events. The stream opens
 * with an {@code event: state} holding the current state (absent for a new entity), then sends an
 * {@code event: change} for each accepted event, in version order, with the state after it. Each
 * event's {@code id} is the entity's version.
 */
final class ChangeStream {

  private static final long KEEPALIVE_MS = 15_000;

  private final Vertx vertx;
  private final EntityTypes types;
  private final EntityStore store;
  private final FoldWatch watch;

  ChangeStream(Vertx vertx, EntityTypes types, EntityStore store, FoldWatch watch) {
    this.vertx = vertx;
    this.types = types;
    this.store = store;
    this.watch = watch;
  }

  void handle(RoutingContext ctx) {
    String type = types.get(ctx.pathParam("type")).name();
    String key = HttpApiVerticle.entityId(ctx);
    HttpServerResponse response = ctx.response();
    response.setChunked(true)
        .putHeader("content-type", "text/event-stream")
        .putHeader("cache-control", "no-cache");
    Stream stream = new Stream(response);
    // Listen before reading the state, so that no change falls between the two.
    Runnable stopListening = watch.listen(type, key, stream::change);
    long keepalive = vertx.setPeriodic(KEEPALIVE_MS, id -> response.write(": keepalive\n\n"));
    Runnable stop = () -> {
      stopListening.run();
      vertx.cancelTimer(keepalive);
    };
    response.closeHandler(v -> stop.run());
    vertx.executeBlocking(() -> store.get(type, key), false)
        .onSuccess(stored -> stream.start(key, stored))
        .onFailure(e -> {
          stop.run();
          ctx.fail(e);
        });
  }

  /** One client's stream; all its methods run on the request's event loop. */
  private static final class Stream {
    private final HttpServerResponse response;
    private List<Buffer> early = new ArrayList<>();
    private long version;

    Stream(HttpServerResponse response) {
      this.response = response;
    }

    void start(String key, StoredEntity stored) {
      if (stored != null) {
        version = stored.version();
        ObjectNode state = JsonNodeFactory.instance.objectNode();
        state.put("key", key);
        state.put("version", stored.version());
        state.set("state", HttpApiVerticle.parse(stored.state()));
        send("state", version, Envelopes.toBytes(state));
      } else {
        response.write(": no events yet\n\n");
      }
      List<Buffer> waiting = early;
      early = null;
      waiting.forEach(this::change);
    }

    void change(Buffer change) {
      if (early != null) {
        early.add(change);
        return;
      }
      JsonNode json = HttpApiVerticle.parse(change.getBytes());
      long changeVersion = json.path("event").path("version").asLong();
      if (changeVersion > version) {
        version = changeVersion;
        send("change", changeVersion, change.getBytes());
      }
    }

    private void send(String event, long id, byte[] data) {
      if (!response.closed()) {
        response.write("event: " + event + "\nid: " + id + "\ndata: " + new String(data, java.nio.charset.StandardCharsets.UTF_8)
            + "\n\n");
      }
    }
  }
}
