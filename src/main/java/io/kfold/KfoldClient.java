package io.kfold;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.core.streams.ReadStream;

import java.time.Duration;
import java.util.List;
import java.util.Objects;

/**
 * kfold's API for Java callers, the same over the event bus (a verticle beside a node, or in another
 * JVM on a clustered event bus) and over HTTP (any JVM that reaches a node). Every call answers a
 * {@link Future}; a failure is a {@link io.kfold.entity.KfoldException} carrying the HTTP status,
 * of the subclass of its case: {@link io.kfold.entity.VersionConflictException} (409, with
 * {@code currentVersion}), {@link io.kfold.entity.CommandRejectedException} (422, with its
 * {@code reason}), {@link io.kfold.entity.NotFoundException} (404),
 * {@link io.kfold.entity.BadRequestException} (400); the others (401, 403, 503, 504…) as
 * {@code KfoldException} itself. Both clients map the same failure to the same exception.
 */
public interface KfoldClient {

  /** A client over this Vert.x instance's event bus (clustered or not): kfold's {@code kfold.*} addresses. */
  static KfoldClient eventBus(Vertx vertx) {
    return new EventBusKfoldClient(vertx);
  }

  /** A client of a node's HTTP API; {@link #close()} closes its HTTP client. */
  static KfoldClient http(Vertx vertx, HttpOptions options) {
    return new HttpKfoldClient(vertx, options);
  }

  /** Decides a command against the entity's current state; the events it appended, or the typed failure. */
  Future<Written> command(String type, String id, String commandType, JsonObject payload, WriteOptions options);

  default Future<Written> command(String type, String id, String commandType, JsonObject payload) {
    return command(type, id, commandType, payload, WriteOptions.NONE);
  }

  /** Appends events as they are, without a decide: each {@code {"type", "payload"}}. */
  Future<Written> append(String type, String id, List<JsonObject> events, WriteOptions options);

  /** The entity's current state; 404 ({@link io.kfold.entity.NotFoundException}) when it has no events. */
  default Future<State> get(String type, String id) {
    return get(type, id, 0, Duration.ofSeconds(5));
  }

  /** The entity's state once it is at {@code minVersion} at least (the version of a write's answer); 504 after {@code timeout}. */
  Future<State> get(String type, String id, long minVersion, Duration timeout);

  /**
   * A page of a type's entities: {@code params} as the members of {@code kfold.<type>.query} (the
   * query parameters of {@code GET /v1/{type}}: an index's value, {@code "<index>.from"},
   * {@code "limit"}, {@code "after"}…), each a string, number or boolean.
   */
  Future<Page> query(String type, JsonObject params);

  /** A view's row; 404 when the view has no such row. */
  default Future<Row> view(String view, String key) {
    return view(view, key, null, Duration.ofSeconds(5));
  }

  /**
   * A view's row once it holds every contribution of the writes up to {@code minPosition} (the
   * {@code position} of a write's answer; null for the row as it is); 504 after {@code timeout}.
   */
  Future<Row> view(String view, String key, String minPosition, Duration timeout);

  /**
   * Follows the entity's changes from now on: completes once the subscription is in place, so a
   * change accepted after that is in the stream. The stream holds the changes a paused reader has
   * not taken, up to 10,000: past that it fails (503) and ends, never dropping one in silence;
   * {@link Changes#close()} ends the subscription.
   * Use the stream from the context that opened it.
   */
  Future<Changes> changes(String type, String id);

  /** Releases what the client holds (the HTTP client; nothing over the event bus). */
  Future<Void> close();

  /**
   * How a write is made.
   *
   * @param expectedVersion the version the caller saw, or null for any (a 409 when the entity is at another)
   * @param idempotencyKey  a retry with the same key answers the first write's result; null for none
   * @param correlationId   carried in the events' meta; null for the command's id
   */
  record WriteOptions(Long expectedVersion, String idempotencyKey, String correlationId) {
    public static final WriteOptions NONE = new WriteOptions(null, null, null);

    public static WriteOptions expecting(long version) {
      return NONE.withExpectedVersion(version);
    }

    public WriteOptions withExpectedVersion(Long version) {
      return new WriteOptions(version, idempotencyKey, correlationId);
    }

    public WriteOptions withIdempotencyKey(String key) {
      return new WriteOptions(expectedVersion, key, correlationId);
    }

    public WriteOptions withCorrelationId(String id) {
      return new WriteOptions(expectedVersion, idempotencyKey, id);
    }
  }

  /**
   * Where and how the HTTP client reaches a node.
   *
   * @param baseUrl     {@code http://host:port} or {@code https://host:port}
   * @param bearerToken sent as {@code Authorization: Bearer …} (an API key or a JWT); null for none
   * @param trustedCaPem PEM text of the CA that signed the node's certificate; null for the JVM's defaults
   */
  record HttpOptions(String baseUrl, String bearerToken, String trustedCaPem) {
    public HttpOptions {
      Objects.requireNonNull(baseUrl, "baseUrl");
      baseUrl = baseUrl.endsWith("/") ? baseUrl.substring(0, baseUrl.length() - 1) : baseUrl;
    }

    public static HttpOptions of(String baseUrl) {
      return new HttpOptions(baseUrl, null, null);
    }

    public HttpOptions withBearerToken(String token) {
      return new HttpOptions(baseUrl, token, trustedCaPem);
    }

    public HttpOptions withTrustedCaPem(String pem) {
      return new HttpOptions(baseUrl, bearerToken, pem);
    }

    /** Never the token: options end up in logs. */
    @Override
    public String toString() {
      return "HttpOptions[baseUrl=" + baseUrl + ", bearerToken=" + (bearerToken == null ? "none" : "<masked>")
          + ", trustedCaPem=" + (trustedCaPem == null ? "none" : "given") + "]";
    }
  }

  /** What a write appended ({@code events}: the envelopes), the entity's version after it, and the position of its last event. */
  record Written(String key, long version, List<JsonObject> events, String position) {
    static Written from(JsonObject json) {
      JsonArray events = json.getJsonArray("events", new JsonArray());
      return new Written(json.getString("key"), json.getLong("version"),
          events.stream().map(JsonObject.class::cast).toList(), json.getString("position"));
    }
  }

  /** An entity's state at a version. */
  record State(String key, long version, JsonObject state) {
    static State from(JsonObject json) {
      return new State(json.getString("key"), json.getLong("version"), json.getJsonObject("state"));
    }
  }

  /**
   * A page of a query: its items ({@code {key, version, state}}, or {@code {key}} with {@code fields}),
   * the cursor of the next page (null after the last), and whether some partition was read from a copy.
   */
  record Page(List<JsonObject> items, String next, boolean stale) {
    static Page from(JsonObject json, boolean stale) {
      return new Page(json.getJsonArray("items", new JsonArray()).stream().map(JsonObject.class::cast).toList(),
          json.getString("next"), stale);
    }
  }

  /** A view's row: its value and how many entities contribute to it. */
  record Row(String key, JsonObject row, long entities) {
    static Row from(JsonObject json) {
      return new Row(json.getString("key"), json.getJsonObject("row"), json.getLong("entities", 0L));
    }
  }

  /** An accepted event of the entity ({@code event}: its envelope) and the entity's state after it. */
  record EntityChange(String key, long version, JsonObject event, JsonObject state) {
    static EntityChange from(JsonObject change) {
      JsonObject event = change.getJsonObject("event");
      return new EntityChange(event.getString("key"), event.getLong("version"), event, change.getJsonObject("state"));
    }
  }

  /** An entity's changes as a Vert.x stream; {@link #close()} ends the subscription. */
  interface Changes extends ReadStream<EntityChange> {
    Future<Void> close();
  }
}
