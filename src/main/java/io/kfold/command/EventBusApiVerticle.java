package io.kfold.command;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.config.NodeConfig;
import io.kfold.cluster.ClusterQueries;
import io.kfold.cluster.Forwarder;
import io.kfold.cluster.NodeDirectory;
import io.kfold.cluster.Ownership;
import io.kfold.cluster.ViewPositions;
import io.kfold.command.EntityWriter.Options;
import io.kfold.entity.Command;
import io.kfold.types.EntityIds;
import io.kfold.entity.EntityType;
import io.kfold.types.EntityTypes;
import io.kfold.types.Envelopes;
import io.kfold.entity.KfoldException;
import io.kfold.entity.NewEvent;
import io.kfold.fold.FoldWatch;
import io.kfold.query.LocalQueries;
import io.kfold.query.Position;
import io.kfold.query.Query;
import io.kfold.store.EntityStore;
import io.kfold.view.ViewType;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.Message;
import io.vertx.core.eventbus.MessageConsumer;
import io.vertx.core.json.JsonObject;
import org.apache.kafka.common.TopicPartition;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.function.Supplier;

/**
 * The event-bus API, for verticles in the same Vert.x instance, or in other JVMs on a clustered event bus
 * (where every node registers these addresses, and a message reaches one of them):
 * <ul>
 *   <li>{@code kfold.<type>.command}: request {@code {"key", "type", "payload", "expectedVersion"?,
 *   "idempotencyKey"?, "correlationId"?}}; reply {@code {key, version, events, position}} as over HTTP,
 *   decided by the node that folds the entity, sent to it over HTTP when it is another one;</li>
 *   <li>{@code kfold.<type>.append}: request {@code {"key", "events": [{"type", "payload"}…],
 *   "expectedVersion"?, "idempotencyKey"?, "correlationId"?}}; appends the events without a decide, as
 *   {@code POST /v1/{type}/{id}/events}; reply and owner as for a command;</li>
 *   <li>{@code kfold.<type>.get}: request {@code {"key", "minVersion"?, "timeoutMs"?}}; reply
 *   {@code {key, version, state}}, from the node that folds the entity, asked over HTTP when it is
 *   another one, as {@code GET /v1/{type}/{id}} does;</li>
 *   <li>{@code kfold.<type>.query}: request a JSON object whose members are the query parameters of
 *   {@code GET /v1/{type}}, with the same meaning: conditions ({@code "<index>"}, {@code "<index>.from"},
 *   {@code "<index>.to"}), {@code "limit"}, {@code "after"}, {@code "fields"}, {@code "minPosition"},
 *   {@code "timeoutMs"}, {@code "stale"}; each a string, number or boolean (a number by its JSON text:
 *   give a {@code number} index's decimals as strings to keep every digit); no members lists every
 *   entity. Reply {@code {items, next}} as over HTTP, merged from every partition of the type on
 *   whichever nodes fold them, whole or a failure (503 while a partition has no node that can answer,
 *   after {@code http.forwardWaitMs}); a reply in which some partition was read from a standby copy
 *   ({@code stale}) carries the header {@code Kfold-Stale: true};</li>
 *   <li>{@code kfold.view.<view>.get}: request {@code {"key", "stale"?, "minPosition"?, "timeoutMs"?}}; reply
 *   {@code {key, row, entities}} as {@code GET /v1/_views/{view}/{key}}, from the node that folds the row
 *   (or, with {@code stale} and no {@code minPosition}, a copy on this node); with {@code minPosition} (the
 *   {@code position} of a write), once the row holds every contribution of the writes up to it, 504 after
 *   {@code timeoutMs}; 404 when the view has no such row;</li>
 * </ul>
 * a failure replies with a {@code ReplyException} whose failure code is the HTTP status (400 for a
 * bad request, 404 for an unknown entity, 409, 422, 503, 504…) and whose message is the problem body
 * the HTTP API answers, as JSON text ({@code {type, title, status, detail}}, with {@code currentVersion}
 * on a version conflict and the reason of a rejected command as its {@code detail}). The fold
 * publishes each accepted change on {@code kfold.<type>.changes}.
 */
public final class EventBusApiVerticle extends VerticleBase {

  private final NodeConfig config;
  private final EntityTypes types;
  private final EntityStore store;
  private final FoldWatch watch;
  private final EntityWriter writer;
  private final Ownership ownership;
  private final NodeDirectory directory;
  private Forwarder forwarder;
  private ClusterQueries queries;
  private ViewPositions viewPositions;

  public EventBusApiVerticle(NodeConfig config, EntityTypes types, EntityStore store, FoldWatch watch,
                             EntityWriter writer, Ownership ownership, NodeDirectory directory) {
    this.config = config;
    this.types = types;
    this.store = store;
    this.watch = watch;
    this.writer = writer;
    this.ownership = ownership;
    this.directory = directory;
  }

  @Override
  public Future<?> start() {
    forwarder = new Forwarder(vertx, config, ownership, directory);
    queries = new ClusterQueries(vertx, config, ownership, directory, forwarder, new LocalQueries(store), watch);
    viewPositions = new ViewPositions(vertx, config, ownership, forwarder, watch);
    List<Future<Void>> registered = new ArrayList<>();
    for (EntityType type : types.all()) {
      String name = type.name();
      MessageConsumer<JsonObject> commands = vertx.eventBus().consumer("kfold." + name + ".command",
          message -> reply(message, () -> command(name, message.body())));
      MessageConsumer<JsonObject> appends = vertx.eventBus().consumer("kfold." + name + ".append",
          message -> reply(message, () -> append(name, message.body())));
      MessageConsumer<JsonObject> gets = vertx.eventBus().consumer("kfold." + name + ".get",
          message -> reply(message, () -> get(name, message.body())));
      MessageConsumer<JsonObject> queried = vertx.eventBus().consumer("kfold." + name + ".query",
          message -> query(name, message));
      registered.add(commands.completion());
      registered.add(appends.completion());
      registered.add(gets.completion());
      registered.add(queried.completion());
    }
    for (ViewType view : types.views()) {
      MessageConsumer<JsonObject> rows = vertx.eventBus().consumer("kfold.view." + view.definition().name() + ".get",
          message -> reply(message, () -> getRow(view, message.body())));
      registered.add(rows.completion());
    }
    return Future.all(registered);
  }

  @Override
  public Future<?> stop() {
    forwarder.close();
    queries.close();
    return viewPositions.close();
  }

  private Future<ObjectNode> command(String type, JsonObject body) {
    String key = key(body);
    Options options = writeOptions(body);
    JsonObject payload = body.getJsonObject("payload", new JsonObject());
    String commandType = body.getString("type");
    if (commandType == null || commandType.isBlank()) {
      throw KfoldException.badRequest("type (the command) is missing");
    }
    // Decided by the node that folds the entity, as over HTTP: only it decides against the current state.
    Buffer command = new JsonObject().put("type", commandType).put("payload", payload).toBuffer();
    return forwarder.command(type, key, command, options.headers()).compose(remote -> remote == null
        ? writer.handle(type, key, new Command(commandType, toJackson(payload)), options).map(EntityWriter.Written::toJson)
        : Future.succeededFuture((ObjectNode) toJackson(remote.getBytes())));
  }

  /** Events appended without a decide, as {@code POST /v1/{type}/{id}/events}, by the node that folds the entity. */
  private Future<ObjectNode> append(String type, JsonObject body) {
    String key = key(body);
    Options options = writeOptions(body);
    JsonNode request = toJackson(new JsonObject().put("events", body.getValue("events")));
    List<NewEvent> events = AppendRequest.events(request, config.writes().maxEvents());
    return forwarder.append(type, key, Buffer.buffer(Envelopes.toBytes(request)), options.headers())
        .compose(remote -> remote == null
            ? writer.append(type, key, events, options).map(EntityWriter.Written::toJson)
            : Future.succeededFuture((ObjectNode) toJackson(remote.getBytes())));
  }

  private static Options writeOptions(JsonObject body) {
    Object expected = body.getValue("expectedVersion");
    if (expected != null && !(expected instanceof Number)) {
      throw KfoldException.badRequest("expectedVersion must be a number");
    }
    return new Options(expected == null ? OptionalLong.empty() : OptionalLong.of(((Number) expected).longValue()),
        Options.checkedIdempotencyKey(body.getString("idempotencyKey")), body.getString("correlationId"));
  }


  /** Answered by the node that folds the entity: another node's copy may be behind, or missing. */
  private Future<ObjectNode> get(String type, JsonObject body) {
    String key = key(body);
    long minVersion = body.getLong("minVersion", 0L);
    long timeoutMs = Math.min(body.getLong("timeoutMs", 5000L), config.http().maxWaitMs());
    if (minVersion < 0 || timeoutMs < 0) {
      throw KfoldException.badRequest("minVersion and timeoutMs must not be negative");
    }
    return forwarder.getState(type, key, minVersion, timeoutMs).compose(remote -> remote == null
        ? getHere(type, key, minVersion, timeoutMs)
        : Future.succeededFuture((ObjectNode) toJackson(remote.getBytes())));
  }

  private Future<ObjectNode> getHere(String type, String key, long minVersion, long timeoutMs) {
    // As over HTTP: at minVersion at least, or else once this node is current on the partition.
    Future<Void> reached = minVersion > 0 ? watch.awaitVersion(type, key, minVersion, timeoutMs)
        : ownership.awaitCurrent(vertx, ownership.partition(type, key), System.currentTimeMillis() + timeoutMs,
            "this node cannot read " + type + " '" + key + "' yet");
    return reached.compose(v -> vertx.executeBlocking(() -> store.get(type, key), false)).map(stored -> {
      if (stored == null) {
        throw KfoldException.notFound("no " + type + " '" + key + "'");
      }
      ObjectNode state = JsonNodeFactory.instance.objectNode();
      state.put("key", key);
      state.put("version", stored.version());
      state.set("state", toJackson(stored.state()));
      return state;
    });
  }

  /**
   * A view's row, as {@code GET /v1/_views/{view}/{key}}: answered by the node that folds the row,
   * or with {@code "stale": true} by a copy this node holds; with {@code minPosition}, by the node
   * that folds the row once it holds the writes up to that position.
   */
  private Future<ObjectNode> getRow(ViewType view, JsonObject body) {
    String key = key(body);
    Object stale = body.getValue("stale");
    if (stale != null && !(stale instanceof Boolean)) {
      throw KfoldException.badRequest("stale must be true or false");
    }
    Object token = body.getValue("minPosition");
    if (token != null && !(token instanceof String)) {
      throw KfoldException.badRequest("minPosition must be the position (a string) of a write's answer");
    }
    long timeoutMs = body.getLong("timeoutMs", 5000L);
    if (timeoutMs < 0 || timeoutMs > config.http().maxWaitMs()) {
      throw KfoldException.badRequest("timeoutMs must be from 0 to " + config.http().maxWaitMs());
    }
    Position position = token == null ? null : viewPositions.position(view, (String) token);
    boolean fromCopy = Boolean.TRUE.equals(stale) && position == null && !ownership.owns(view.name(), key);
    Future<ObjectNode> copy = fromCopy
        ? vertx.executeBlocking(() -> view.answer(key, store.get(view.name(), key)), false)
        : Future.succeededFuture(null);
    TopicPartition partition = viewPositions.rowPartition(view, key);
    String path = "/v1/_views/" + view.definition().name() + "/" + key
        + (position == null ? "" : "?minPosition=" + position.token() + "&timeoutMs=" + timeoutMs);
    return copy.compose(answer -> answer != null ? Future.succeededFuture(answer)
        : forwarder.getFromOwner(partition, path, timeoutMs).compose(remote -> {
          if (remote != null) {
            return Future.succeededFuture((ObjectNode) toJackson(remote.getBytes()));
          }
          Future<Void> applied = position == null
              ? ownership.awaitCurrent(vertx, partition, System.currentTimeMillis() + timeoutMs,
                  "this node cannot read row '" + key + "' of view '" + view.definition().name() + "' yet")
              : viewPositions.awaitApplied(position, List.of(partition), timeoutMs);
          return applied.compose(v -> vertx.executeBlocking(() -> rowHere(view, key), false));
        }));
  }

  private ObjectNode rowHere(ViewType view, String key) {
    ObjectNode answer = view.answer(key, store.get(view.name(), key));
    if (answer == null) {
      throw KfoldException.notFound("view '" + view.definition().name() + "' has no row '" + key + "'");
    }
    return answer;
  }

  /**
   * A query, as {@code GET /v1/{type}} with the message's members as its parameters, through the
   * same checks and the same cluster-wide path; the reply is the answer's JSON, marked
   * {@code Kfold-Stale: true} when a partition was read from a copy.
   */
  private void query(String type, Message<JsonObject> message) {
    Future<ClusterQueries.Answer> answer;
    try {
      answer = queries.run(queries.request(type, types.indexes(type), Query.parameters(message.body())));
    } catch (ClassCastException e) {
      answer = Future.failedFuture(KfoldException.badRequest("a query must be a JSON object"));
    } catch (RuntimeException e) {
      answer = Future.failedFuture(e);
    }
    answer.onSuccess(page -> message.reply(new JsonObject(Buffer.buffer(page.page().toJson())),
            page.stale() ? new DeliveryOptions().addHeader(ClusterQueries.STALE, "true") : new DeliveryOptions()))
        .onFailure(e -> fail(message, e));
  }

  private static String key(JsonObject body) {
    if (body == null) {
      throw KfoldException.badRequest("the request must be a JSON object with a key");
    }
    return EntityIds.check(body.getString("key"));
  }

  /** Replies with the call's result, or fails the message with the HTTP status of its error. */
  private static void reply(Message<JsonObject> message, Supplier<Future<ObjectNode>> call) {
    Future<ObjectNode> result;
    try {
      result = call.get();
    } catch (ClassCastException e) {
      result = Future.failedFuture(KfoldException.badRequest("a field of the request has the wrong type: " + e.getMessage()));
    } catch (RuntimeException e) {
      result = Future.failedFuture(e);
    }
    result.onSuccess(json -> message.reply(new JsonObject(Buffer.buffer(Envelopes.toBytes(json)))))
        .onFailure(e -> fail(message, e));
  }

  /**
   * Fails the message with the HTTP status of the error and, as its message, the problem body the
   * HTTP API would answer: a caller gets {@code currentVersion} and the like, not only the status.
   */
  private static void fail(Message<?> message, Throwable e) {
    KfoldException problem = e instanceof KfoldException k ? k
        : new KfoldException(500, "Internal error", String.valueOf(e.getMessage()), Map.of());
    message.fail(problem.status(), new String(Envelopes.toBytes(problem.problem()), StandardCharsets.UTF_8));
  }

  private static JsonNode toJackson(JsonObject json) {
    return toJackson(json.toBuffer().getBytes());
  }

  private static JsonNode toJackson(byte[] json) {
    try {
      return Envelopes.parse(json);
    } catch (IOException e) {
      throw new IllegalStateException("unreadable JSON", e);
    }
  }
}
