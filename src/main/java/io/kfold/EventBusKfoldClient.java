package io.kfold;

import io.kfold.cluster.ClusterQueries;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.Message;
import io.vertx.core.eventbus.MessageConsumer;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;

import java.time.Duration;
import java.util.List;

/** {@link KfoldClient} over the event bus: kfold's {@code kfold.<type>.*} and {@code kfold.view.<view>.get} addresses. */
final class EventBusKfoldClient implements KfoldClient {

  /** Beyond the wait a request asks the node for, the time its answer may take to come back. */
  private static final long REPLY_MARGIN_MS = 10_000;

  private final Vertx vertx;

  EventBusKfoldClient(Vertx vertx) {
    this.vertx = vertx;
  }

  @Override
  public Future<Written> command(String type, String id, String commandType, JsonObject payload, WriteOptions options) {
    JsonObject request = write(id, options).put("type", commandType).put("payload", payload == null ? new JsonObject() : payload);
    return request("kfold." + type + ".command", request, 0).map(reply -> Written.from(reply.body()));
  }

  @Override
  public Future<Written> append(String type, String id, List<JsonObject> events, WriteOptions options) {
    JsonObject request = write(id, options).put("events", new JsonArray(List.copyOf(events)));
    return request("kfold." + type + ".append", request, 0).map(reply -> Written.from(reply.body()));
  }

  @Override
  public Future<State> get(String type, String id, long minVersion, Duration timeout) {
    JsonObject request = new JsonObject().put("key", id).put("minVersion", minVersion).put("timeoutMs", timeout.toMillis());
    return request("kfold." + type + ".get", request, timeout.toMillis()).map(reply -> State.from(reply.body()));
  }

  @Override
  public Future<Page> query(String type, JsonObject params) {
    // Checked by the node, as over HTTP: here only the reply's wait, from a number if it is one.
    long waitMs = params != null && params.getValue("timeoutMs") instanceof Number wait ? wait.longValue() : 0;
    return request("kfold." + type + ".query", params == null ? new JsonObject() : params, waitMs)
        .map(reply -> Page.from(reply.body(), "true".equals(reply.headers().get(ClusterQueries.STALE))));
  }

  @Override
  public Future<Row> view(String view, String key, String minPosition, Duration timeout) {
    JsonObject request = new JsonObject().put("key", key);
    if (minPosition != null) {
      request.put("minPosition", minPosition).put("timeoutMs", timeout.toMillis());
    }
    return request("kfold.view." + view + ".get", request, timeout.toMillis()).map(reply -> Row.from(reply.body()));
  }

  /**
   * The type's changes, published on {@code kfold.<type>.changes} by the node that folds each
   * entity, filtered to this entity's; the subscription is in place once the consumer is registered
   * (across the cluster, on a clustered bus).
   */
  @Override
  public Future<Changes> changes(String type, String id) {
    return ChangeFeed.open(vertx, feed -> {
      MessageConsumer<Buffer> consumer = vertx.eventBus().consumer("kfold." + type + ".changes");
      consumer.handler(message -> {
        JsonObject change = message.body().toJsonObject();
        if (id.equals(change.getJsonObject("event").getString("key"))) {
          feed.push(EntityChange.from(change));
        }
      });
      consumer.exceptionHandler(feed::fail);
      consumer.endHandler(v -> feed.end());
      // Never paused: the consumer gets every change of the type, and a paused event-bus consumer drops
      // what passes its buffer (1000 messages) in silence. The feed keeps this entity's, within its bound.
      feed.source(flowing -> {}, consumer::unregister);
      return consumer.completion();
    });
  }

  @Override
  public Future<Void> close() {
    return Future.succeededFuture();
  }

  private static JsonObject write(String id, WriteOptions options) {
    JsonObject request = new JsonObject().put("key", id);
    WriteOptions given = options == null ? WriteOptions.NONE : options;
    if (given.expectedVersion() != null) {
      request.put("expectedVersion", given.expectedVersion());
    }
    if (given.idempotencyKey() != null) {
      request.put("idempotencyKey", given.idempotencyKey());
    }
    if (given.correlationId() != null) {
      request.put("correlationId", given.correlationId());
    }
    return request;
  }

  private Future<Message<JsonObject>> request(String address, JsonObject body, long waitMs) {
    DeliveryOptions delivery = new DeliveryOptions()
        .setSendTimeout(Math.max(DeliveryOptions.DEFAULT_TIMEOUT, waitMs + REPLY_MARGIN_MS));
    return vertx.eventBus().<JsonObject>request(address, body, delivery)
        .recover(e -> Future.failedFuture(ClientFailures.fromBus(e, address)));
  }
}
