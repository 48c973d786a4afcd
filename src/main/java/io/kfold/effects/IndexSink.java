package io.kfold.effects;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.effects.EffectConfig.IndexTarget;
import io.kfold.types.Envelopes;
import io.kfold.entity.EffectSink.PermanentFailure;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.ext.web.client.WebClient;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Keeps a search index (OpenSearch or Elasticsearch) in step with entity states: the document is
 * the entity's state, its id the entity id, and its external version the entity's version, so that
 * a re-delivered or late change never replaces a newer document. Changes that arrive together go
 * in one {@code _bulk} request.
 *
 * <p>A change that deletes the entity replaces its document with a tombstone, {@code {"_deleted": true}},
 * of the deleting version, instead of deleting it: the search engine remembers a delete's version only
 * for {@code index.gc_deletes} (60 s by default), after which an older change would bring the
 * deleted document back, while a tombstone keeps refusing it for as long as it is there.
 */
final class IndexSink implements EffectSink {

  /** The whole source of a deleted entity's document; searches leave these out by this field. */
  private static final byte[] TOMBSTONE = "{\"_deleted\":true}".getBytes(StandardCharsets.UTF_8);

  private final IndexTarget target;
  private final WebClient client;
  private final long timeoutMs;
  private final Context context;
  private List<Pending> batch = new ArrayList<>();
  private Future<Void> indexReady;

  private record Pending(Change change, Promise<Void> done) {}

  IndexSink(Vertx vertx, IndexTarget target, long timeoutMs) {
    this.target = target;
    this.timeoutMs = timeoutMs;
    this.client = WebClient.create(vertx);
    this.context = vertx.getOrCreateContext();
  }

  @Override
  public Future<Void> deliver(Change change) {
    Promise<Void> done = Promise.promise();
    batch.add(new Pending(change, done));
    if (batch.size() == 1) {
      // Everything delivered in this turn of the event loop goes in the same bulk request.
      context.runOnContext(v -> flush());
    }
    return done.future();
  }

  private void flush() {
    List<Pending> sending = batch;
    batch = new ArrayList<>();
    ensureIndex().compose(v -> bulk(sending)).onComplete(result -> {
      if (result.failed()) {
        sending.forEach(p -> p.done().tryFail(result.cause()));
        return;
      }
      JsonNode items = result.result().path("items");
      for (int i = 0; i < sending.size(); i++) {
        JsonNode outcome = items.path(i).path("index");
        int status = outcome.path("status").asInt(500);
        Pending pending = sending.get(i);
        // 409: a document or tombstone of this or a newer version is there already.
        if (status < 300 || status == 409) {
          pending.done().tryComplete();
        } else {
          String failure = "indexing " + pending.change().id() + " in " + target.index() + " answered " + status + ": "
              + outcome.path("error").path("reason").asText(outcome.path("error").toString());
          pending.done().tryFail(status == 408 || status == 429 || status >= 500
              ? new IllegalStateException(failure) : new PermanentFailure(failure));
        }
      }
    });
  }

  private Future<JsonNode> bulk(List<Pending> sending) {
    Buffer body = Buffer.buffer();
    for (Pending pending : sending) {
      Change change = pending.change();
      boolean delete = target.deleteOn().contains(change.eventType());
      ObjectNode meta = JsonNodeFactory.instance.objectNode();
      meta.putObject("index")
          .put("_index", target.index())
          .put("_id", change.key())
          .put("version", change.version())
          .put("version_type", "external");
      body.appendBytes(Envelopes.toBytes(meta)).appendByte((byte) '\n')
          .appendBytes(delete ? TOMBSTONE : Envelopes.toBytes(change.state())).appendByte((byte) '\n');
    }
    return client.postAbs(target.url() + "/_bulk")
        .putHeader("content-type", "application/x-ndjson")
        .timeout(timeoutMs)
        .sendBuffer(body)
        .compose(response -> {
          if (response.statusCode() != 200) {
            String failure = "bulk request to " + target.url() + " answered " + response.statusCode();
            return Future.failedFuture(response.statusCode() >= 500 || response.statusCode() == 429
                ? new IllegalStateException(failure) : new PermanentFailure(failure));
          }
          try {
            return Future.succeededFuture(Envelopes.parse(response.body().getBytes()));
          } catch (IOException e) {
            return Future.failedFuture(new IllegalStateException("unreadable bulk answer", e));
          }
        });
  }

  /** Creates the index on first use, without replicas so that a single node is green. */
  private Future<Void> ensureIndex() {
    if (indexReady == null || indexReady.failed()) {
      indexReady = client.putAbs(target.url() + "/" + target.index())
          .timeout(timeoutMs)
          .sendJsonObject(new io.vertx.core.json.JsonObject().put("settings",
              new io.vertx.core.json.JsonObject().put("number_of_replicas", 0)))
          .compose(response -> response.statusCode() < 300 || response.statusCode() == 400
              ? Future.succeededFuture()  // 400: resource_already_exists
              : Future.failedFuture(new IllegalStateException("creating index " + target.index() + " answered "
                  + response.statusCode())));
    }
    return indexReady;
  }

  @Override
  public Future<Void> close() {
    client.close();
    return Future.succeededFuture();
  }
}
