package io.kfold.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.MissingNode;
import io.kfold.config.NodeConfig;
import io.kfold.auth.NodeProof;
import io.kfold.types.Envelopes;
import io.kfold.entity.KfoldException;
import io.kfold.view.ViewType;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.http.RequestOptions;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.client.HttpRequest;
import io.vertx.ext.web.client.WebClient;
import org.apache.kafka.common.TopicPartition;

import java.io.IOException;
import java.time.Clock;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiConsumer;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.BiFunction;

/**
 * Sends a request for an entity that another node folds to that node, and relays its answer, so a
 * caller never needs to know where an entity lives. During a rebalance it waits (bounded) for the
 * new owner to be known. A forwarded request is never forwarded again: the node it reaches answers
 * it itself.
 */
public final class Forwarder {

  /**
   * The node that answered a request for an entity: set by the node asked, replaced by the owner's
   * when the request was forwarded, so that a caller (and a test) sees where it was decided.
   */
  public static final String ANSWERED_BY = "Kfold-Node";
  /** Marks a request one node sends another: the node it reaches answers it itself. */
  public static final String FORWARDED_BY = "X-Kfold-Forwarded-By";
  /** The caller's credentials go along: the node that folds the entity checks them again. */
  private static final List<String> REQUEST_HEADERS = List.of("content-type", "accept", "If-Match", "Idempotency-Key",
      "X-Correlation-Id", "Authorization");
  private static final List<String> RESPONSE_HEADERS = List.of("content-type", "ETag", ANSWERED_BY, "WWW-Authenticate");

  private final Vertx vertx;
  private final NodeConfig config;
  private final Ownership ownership;
  private final NodeDirectory directory;
  private final WebClient client;
  private final HttpClient streams;
  private final NodeProof proof;
  private final LongAdder forwarded = new LongAdder();
  private final LongAdder waitingForOwner = new LongAdder();

  public Forwarder(Vertx vertx, NodeConfig config, Ownership ownership, NodeDirectory directory) {
    this.vertx = vertx;
    this.config = config;
    this.ownership = ownership;
    this.directory = directory;
    this.proof = new NodeProof(config.auth().clusterSecret(), Clock.systemUTC());
    this.client = WebClient.create(vertx, NodeClients.web(config), new PoolOptions().setHttp1MaxSize(64));
    // Streams hold their connection for as long as they last: a pool of their own, not the requests'.
    this.streams = vertx.createHttpClient(NodeClients.http(config), new PoolOptions().setHttp1MaxSize(1024));
  }

  /** Forwards the request when another node folds the entity; answers whether it did. */
  public boolean forward(RoutingContext ctx, String type, String key) {
    return forward(ctx, type, key, this::send);
  }

  /** Relays the change stream of an entity that another node folds; answers whether it did. */
  public boolean forwardStream(RoutingContext ctx, String type, String key) {
    return forward(ctx, type, key, this::relay);
  }

  private boolean forward(RoutingContext ctx, String type, String key,
                          BiFunction<RoutingContext, String, Future<Void>> how) {
    if (ownership.owns(type, key) || ctx.request().getHeader(FORWARDED_BY) != null) {
      return false;
    }
    owner(ownership.partition(type, key)).onSuccess(url -> {
      if (url == null) {
        ctx.reroute(ctx.request().method(), ctx.request().uri());  // it became this node's meanwhile
      } else {
        how.apply(ctx, url).onFailure(ctx::fail);
      }
    }).onFailure(ctx::fail);
    return true;
  }

  /**
   * For a caller that is not an HTTP request (the event bus): the answer of the node that folds the
   * entity to {@code GET /v1/{type}/{key}?minVersion=&timeoutMs=}, the JSON {@code {key, version,
   * state}}; null when this node folds it and answers itself. Fails with a {@link KfoldException}
   * of the status that node answered (404, 504…), or 503 while no node is known to fold it.
   */
  public Future<Buffer> getState(String type, String key, long minVersion, long timeoutMs) {
    return ask(type, key, HttpMethod.GET, "?minVersion=" + minVersion + "&timeoutMs=" + timeoutMs, Map.of(), null);
  }

  /**
   * For a caller that is not an HTTP request: the answer of the node that folds the entity to
   * {@code POST /v1/{type}/{key}/commands} with this body ({@code {type, payload}}) and headers
   * ({@code If-Match}, {@code Idempotency-Key}, {@code X-Correlation-Id}); null when this node
   * folds it and decides the command itself. Fails as {@link #getState} does.
   */
  public Future<Buffer> command(String type, String key, Buffer body, Map<String, String> headers) {
    return ask(type, key, HttpMethod.POST, "/commands", headers, body);
  }

  /**
   * As {@link #command}, for {@code POST /v1/{type}/{key}/events} with this body
   * ({@code {events: [{type, payload}…]}}).
   */
  public Future<Buffer> append(String type, String key, Buffer body, Map<String, String> headers) {
    return ask(type, key, HttpMethod.POST, "/events", headers, body);
  }

  /**
   * For a caller that is not an HTTP request: the answer of the node that folds the partition to
   * {@code GET <path>} (a path of this API, with its query), which may take up to {@code waitMs} to
   * answer; null when this node folds the partition. Fails as {@link #getState} does.
   */
  public Future<Buffer> getFromOwner(TopicPartition partition, String path, long waitMs) {
    if (ownership.owns(partition)) {
      return Future.succeededFuture(null);
    }
    return owner(partition).compose(url -> {
      if (url == null) {
        return Future.succeededFuture(null);  // it became this node's meanwhile
      }
      forwarded.increment();
      return fromThisNode(client.getAbs(url + path), HttpMethod.GET, path)
          .timeout(waitMs + config.http().forwardWaitMs() + 5_000)
          .send()
          .recover(e -> Future.failedFuture(KfoldException.unavailable("asking " + url + " for " + path + " failed: "
              + e.getMessage())))
          .compose(answer -> answer.statusCode() == 200
              ? Future.succeededFuture(answer.body() == null ? Buffer.buffer() : answer.body())
              : Future.failedFuture(problem(url, answer.statusCode(), answer.body())));
    });
  }

  private Future<Buffer> ask(String type, String key, HttpMethod method, String rest, Map<String, String> headers,
                             Buffer body) {
    if (ownership.owns(type, key)) {
      return Future.succeededFuture(null);
    }
    return owner(ownership.partition(type, key)).compose(url -> {
      if (url == null) {
        return Future.succeededFuture(null);  // it became this node's meanwhile
      }
      forwarded.increment();
      // A view's row is read at its own route: its folded type has none.
      String view = ViewType.viewName(type);
      String path = view == null ? "/v1/" + type + "/" + key : "/v1/_views/" + view + "/" + key;
      HttpRequest<Buffer> request = fromThisNode(client.requestAbs(method, url + path + rest), method, path + rest)
          .timeout(config.writes().timeoutMs() + config.http().maxWaitMs());
      headers.forEach(request::putHeader);
      return (body == null ? request.send() : request.putHeader("content-type", "application/json").sendBuffer(body))
          .recover(e -> Future.failedFuture(KfoldException.unavailable("asking " + url + " about " + type + " '" + key
              + "' failed: " + e.getMessage())))
          .compose(answer -> answer.statusCode() == 200 ? Future.succeededFuture(answer.body())
              : Future.failedFuture(problem(url, answer.statusCode(), answer.body())));
    });
  }

  /**
   * Marks a request to another node as this node's, with its proof when the cluster authenticates
   * (the receiver refuses a forwarded request without one). {@code uri} is the path and query as sent.
   */
  public <T> HttpRequest<T> fromThisNode(HttpRequest<T> request, HttpMethod method, String uri) {
    markAsThisNode(request::putHeader, method, uri);
    return request;
  }

  private void markAsThisNode(BiConsumer<String, String> header, HttpMethod method, String uri) {
    header.accept(FORWARDED_BY, directory.node());
    String signed = proof.sign(directory.node(), method.name(), uri);
    if (signed != null) {
      header.accept(NodeProof.HEADER, signed);
    }
  }

  /** The failure another node answered, with its status, title, detail and extra members. */
  static KfoldException problem(String url, int status, Buffer body) {
    JsonNode problem;
    try {
      problem = body == null ? MissingNode.getInstance() : Envelopes.parse(body.getBytes());
    } catch (IOException e) {
      problem = MissingNode.getInstance();
    }
    Map<String, Object> details = new LinkedHashMap<>();
    problem.fields().forEachRemaining(field -> {
      if (!List.of("type", "title", "status", "detail").contains(field.getKey())) {
        details.put(field.getKey(), field.getValue());
      }
    });
    String reason = HttpResponseStatus.valueOf(status).reasonPhrase();
    return KfoldException.of(status, problem.path("title").asText(reason),
        problem.path("detail").asText("the node at " + url + " answered " + status + " " + reason), details);
  }

  /** Requests sent to the node that folds their entity, since this node started. */
  public long forwarded() {
    return forwarded.sum();
  }

  /** Requests waiting now for the node that folds their entity to be known, as during a rebalance. */
  public long waitingForOwner() {
    return waitingForOwner.sum();
  }

  /**
   * The URL of the node that folds the partition, null when it is this node, waiting up to
   * {@code http.forwardWaitMs} while no node is known to fold it.
   */
  private Future<String> owner(TopicPartition partition) {
    Promise<String> owner = Promise.promise();
    findOwner(partition, System.currentTimeMillis() + config.http().forwardWaitMs(), owner, false);
    return owner.future();
  }

  private void findOwner(TopicPartition partition, long deadline, Promise<String> owner, boolean waiting) {
    var other = directory.owner(partition).filter(claim -> !claim.node().equals(directory.node()));
    boolean mine = other.isEmpty() && ownership.owns(partition);
    if (other.isEmpty() && !mine && System.currentTimeMillis() <= deadline) {
      if (!waiting) {
        waitingForOwner.increment();
      }
      vertx.setTimer(100, id -> findOwner(partition, deadline, owner, true));
      return;
    }
    if (waiting) {
      waitingForOwner.decrement();
    }
    if (other.isPresent()) {
      owner.complete(other.get().url());
    } else if (mine) {
      owner.complete(null);
    } else {
      owner.fail(KfoldException.unavailable("no node folds " + partition + " at the moment (a rebalance?); retry"));
    }
  }

  private Future<Void> send(RoutingContext ctx, String url) {
    forwarded.increment();
    HttpRequest<Buffer> request = fromThisNode(client.requestAbs(ctx.request().method(), url + ctx.request().uri()),
        ctx.request().method(), ctx.request().uri())
        .timeout(config.writes().timeoutMs() + config.http().maxWaitMs());
    for (String header : REQUEST_HEADERS) {
      String value = ctx.request().getHeader(header);
      if (value != null) {
        request.putHeader(header, value);
      }
    }
    Buffer body = ctx.body() == null ? null : ctx.body().buffer();
    return (body == null ? request.send() : request.sendBuffer(body))
        .recover(e -> Future.failedFuture(KfoldException.unavailable("forwarding to " + url + " failed: " + e.getMessage())))
        .compose(answer -> {
          ctx.response().setStatusCode(answer.statusCode());
          for (String header : RESPONSE_HEADERS) {
            String value = answer.getHeader(header);
            if (value != null) {
              ctx.response().putHeader(header, value);
            }
          }
          return answer.body() == null ? ctx.response().end() : ctx.response().end(answer.body());
        });
  }

  /**
   * Relays a stream from the node that folds the entity for as long as both ends are open. When
   * that node stops folding it, its stream ends, and so does this one: an SSE client reconnects
   * (with its Last-Event-ID, passed on) and is relayed to the new owner. A client that reads
   * slowly pauses the relay, so this node holds at most {@code http.streamMaxPendingBytes} for it;
   * the owner's stream then fills and is ended there, and this one is closed.
   */
  private Future<Void> relay(RoutingContext ctx, String url) {
    forwarded.increment();
    RequestOptions options = new RequestOptions().setMethod(HttpMethod.GET).setAbsoluteURI(url + ctx.request().uri());
    markAsThisNode(options::putHeader, HttpMethod.GET, ctx.request().uri());
    for (String header : List.of("Last-Event-ID", "Authorization")) {
      String value = ctx.request().getHeader(header);
      if (value != null) {
        options.putHeader(header, value);
      }
    }
    return streams.request(options)
        .compose(request -> request.send().compose(answer -> {
          HttpServerResponse response = ctx.response().setStatusCode(answer.statusCode()).setChunked(true)
              .setWriteQueueMaxSize(config.http().streamMaxPendingBytes());
          for (String header : List.of("content-type", "cache-control", ANSWERED_BY)) {
            String value = answer.getHeader(header);
            if (value != null) {
              response.putHeader(header, value);
            }
          }
          response.closeHandler(v -> request.reset());
          return answer.pipe().endOnComplete(false).to(response).transform(relayed -> {
            if (response.closed()) {
              return Future.succeededFuture();
            }
            // Ending would wait behind what a slow client has not taken: close its connection instead.
            return response.writeQueueFull() ? response.reset() : response.end();
          });
        }))
        .recover(e -> ctx.response().headWritten() ? Future.succeededFuture()
            : Future.failedFuture(KfoldException.unavailable("relaying the stream of " + url + " failed: " + e.getMessage())));
  }

  public void close() {
    client.close();
    streams.close();
  }
}
