package io.kfold;

import io.kfold.cluster.ClusterQueries;
import io.kfold.command.EntityWriter;
import io.kfold.entity.KfoldException;
import io.kfold.query.Query;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientAgent;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.PemTrustOptions;
import io.vertx.core.parsetools.RecordParser;

import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;

/** {@link KfoldClient} over a node's HTTP API; changes as its Server-Sent Events. */
final class HttpKfoldClient implements KfoldClient {

  /** Beyond the wait a request asks the node for, the time its answer may take to come back. */
  private static final long REPLY_MARGIN_MS = 10_000;
  private static final long DEFAULT_TIMEOUT_MS = 30_000;

  private final HttpOptions options;
  private final Vertx vertx;
  private final HttpClientAgent http;

  HttpKfoldClient(Vertx vertx, HttpOptions options) {
    this.vertx = vertx;
    this.options = options;
    HttpClientOptions client = new HttpClientOptions();
    if (options.trustedCaPem() != null) {
      client.setTrustOptions(new PemTrustOptions().addCertValue(Buffer.buffer(options.trustedCaPem())));
    }
    this.http = vertx.createHttpClient(client);
  }

  @Override
  public Future<Written> command(String type, String id, String commandType, JsonObject payload, WriteOptions options) {
    JsonObject body = new JsonObject().put("type", commandType).put("payload", payload == null ? new JsonObject() : payload);
    return send(HttpMethod.POST, "/v1/" + segment(type) + "/" + segment(id) + "/commands", writeHeaders(options), body, 0)
        .map(Written::from);
  }

  @Override
  public Future<Written> append(String type, String id, List<JsonObject> events, WriteOptions options) {
    JsonObject body = new JsonObject().put("events", new JsonArray(List.copyOf(events)));
    return send(HttpMethod.POST, "/v1/" + segment(type) + "/" + segment(id) + "/events", writeHeaders(options), body, 0)
        .map(Written::from);
  }

  @Override
  public Future<State> get(String type, String id, long minVersion, Duration timeout) {
    String path = "/v1/" + segment(type) + "/" + segment(id) + "?minVersion=" + minVersion + "&timeoutMs=" + timeout.toMillis();
    return send(HttpMethod.GET, path, Map.of(), null, timeout.toMillis()).map(State::from);
  }

  @Override
  public Future<Page> query(String type, JsonObject params) {
    Map<String, List<String>> parameters;
    try {
      parameters = Query.parameters(params);  // checked as the event bus checks them
    } catch (KfoldException e) {
      return Future.failedFuture(e);
    }
    StringBuilder path = new StringBuilder("/v1/").append(segment(type));
    char separator = '?';
    for (Map.Entry<String, List<String>> parameter : parameters.entrySet()) {
      path.append(separator).append(segment(parameter.getKey())).append('=').append(segment(parameter.getValue().get(0)));
      separator = '&';
    }
    long waitMs = params != null && params.getValue("timeoutMs") instanceof Number n ? n.longValue() : 0;
    return request(HttpMethod.GET, path.toString(), Map.of(), null, waitMs)
        .compose(response -> answer(response).map(json -> Page.from(json, "true".equals(response.getHeader(ClusterQueries.STALE)))));
  }

  @Override
  public Future<Row> view(String view, String key, String minPosition, Duration timeout) {
    String path = "/v1/_views/" + segment(view) + "/" + segment(key)
        + (minPosition == null ? "" : "?minPosition=" + segment(minPosition) + "&timeoutMs=" + timeout.toMillis());
    return send(HttpMethod.GET, path, Map.of(), null, timeout.toMillis()).map(Row::from);
  }

  /**
   * {@code GET /v1/{type}/{id}/changes}: its {@code event: change} frames; the opening
   * {@code event: state} is not a change and is left out. The subscription is in place once the
   * node answered the request's head. The node ending the stream (a reader too slow, the node
   * stopping) ends this one.
   */
  @Override
  public Future<Changes> changes(String type, String id) {
    RequestOptions request = requestOptions(HttpMethod.GET, "/v1/" + segment(type) + "/" + segment(id) + "/changes",
        Map.of("Accept", "text/event-stream"));
    return ChangeFeed.open(vertx, feed -> http.request(request)
        .compose(req -> req.send().map(response -> {
          follow(feed, req, response);
          return response;
        }))
        .recover(e -> Future.failedFuture(ClientFailures.unreachable("GET " + options.baseUrl() + request.getURI(), e)))
        .compose(response -> response.statusCode() == 200 ? Future.succeededFuture() : answer(response)));
  }

  /** Reads the stream's events into the feed; a failed answer's body is left to {@link #answer}. */
  private static void follow(ChangeFeed feed, HttpClientRequest request, HttpClientResponse response) {
    if (response.statusCode() != 200) {
      return;
    }
    ServerSentEvents events = new ServerSentEvents((event, data) -> {
      if ("change".equals(event)) {
        feed.push(EntityChange.from(new JsonObject(data)));
      }
    });
    RecordParser lines = RecordParser.newDelimited("\n", response);
    lines.handler(events::line);
    lines.exceptionHandler(feed::fail);
    lines.endHandler(v -> feed.end());
    feed.source(flowing -> {
      if (flowing) {
        lines.resume();
      } else {
        lines.pause();
      }
    }, () -> request.reset().recover(e -> Future.succeededFuture()));
  }

  @Override
  public Future<Void> close() {
    return http.close();
  }

  private Future<JsonObject> send(HttpMethod method, String path, Map<String, String> headers, JsonObject body, long waitMs) {
    return request(method, path, headers, body, waitMs).compose(HttpKfoldClient::answer);
  }

  private Future<HttpClientResponse> request(HttpMethod method, String path, Map<String, String> headers, JsonObject body,
                                             long waitMs) {
    RequestOptions request = requestOptions(method, path, headers)
        .setIdleTimeout(Math.max(DEFAULT_TIMEOUT_MS, waitMs + REPLY_MARGIN_MS));
    if (body != null) {
      request.putHeader("Content-Type", "application/json");
    }
    return http.request(request)
        .compose(req -> body == null ? req.send() : req.send(body.toBuffer()))
        .recover(e -> Future.failedFuture(ClientFailures.unreachable(method + " " + options.baseUrl() + path, e)));
  }

  /** The answer's JSON, or the typed failure of its problem. */
  private static Future<JsonObject> answer(HttpClientResponse response) {
    return response.body().compose(body -> response.statusCode() < 300 ? Future.succeededFuture(body.toJsonObject())
        : Future.failedFuture(ClientFailures.fromProblem(response.statusCode(), body.toString(StandardCharsets.UTF_8))));
  }

  private RequestOptions requestOptions(HttpMethod method, String path, Map<String, String> headers) {
    RequestOptions request = new RequestOptions().setMethod(method).setAbsoluteURI(options.baseUrl() + path);
    if (options.bearerToken() != null) {
      request.putHeader("Authorization", "Bearer " + options.bearerToken());
    }
    headers.forEach((name, value) -> request.putHeader(name, value));
    return request;
  }

  /** The headers of a write, as kfold's own nodes send them to each other. */
  private static Map<String, String> writeHeaders(WriteOptions options) {
    WriteOptions given = options == null ? WriteOptions.NONE : options;
    return new EntityWriter.Options(given.expectedVersion() == null ? OptionalLong.empty()
        : OptionalLong.of(given.expectedVersion()), given.idempotencyKey(), given.correlationId()).headers();
  }

  /** A path segment or query text, percent-encoded. */
  private static String segment(String text) {
    return URLEncoder.encode(text, StandardCharsets.UTF_8).replace("+", "%20");
  }
}
