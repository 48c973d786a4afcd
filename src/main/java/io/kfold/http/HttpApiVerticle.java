package io.kfold.http;

import com.fasterxml.jackson.core.io.JsonStringEncoder;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.config.NodeConfig;
import io.kfold.auth.Grant.Role;
import io.kfold.command.AppendRequest;
import io.kfold.command.EntityWriter;
import io.kfold.cluster.ClusterQueries;
import io.kfold.cluster.Forwarder;
import io.kfold.cluster.NodeDirectory;
import io.kfold.cluster.Ownership;
import io.kfold.cluster.ViewPositions;
import io.kfold.command.EntityWriter.Options;
import io.kfold.command.EntityWriter.Written;
import io.kfold.entity.Command;
import io.kfold.entity.NewEvent;
import io.kfold.types.EntityIds;
import io.kfold.entity.EntityType;
import io.kfold.types.EntityTypes;
import io.kfold.types.Envelopes;
import io.kfold.entity.KfoldException;
import io.kfold.fold.FoldProgress;
import io.kfold.fold.FoldWatch;
import io.kfold.log.KafkaClients;
import io.kfold.query.Position;
import io.kfold.query.LocalQueries;
import io.kfold.log.Supervisor;
import io.kfold.node.NodeMetrics;
import io.kfold.store.EntityStore;
import io.kfold.store.StoredEntity;
import io.kfold.view.ViewType;
import io.kfold.view.ViewVersion;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.VerticleBase;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.json.JsonObject;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.kfold.effects.EffectStats;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.TopicPartition;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.regex.Pattern;

/**
 * The HTTP API (v1). Handlers parse, call and map; they only compose futures, and every store read
 * runs on a worker thread.
 */
public final class HttpApiVerticle extends VerticleBase {

  private static final Logger LOG = LoggerFactory.getLogger(HttpApiVerticle.class);
  private static final Pattern VERSION = Pattern.compile("(W/)?\"?([0-9]{1,18})\"?");
  private static final int MAX_HISTORY_PAGE = 1000;

  private final NodeConfig config;
  private final EntityTypes types;
  private final EntityStore store;
  private final FoldWatch watch;
  private final FoldProgress progress;
  private final Supervisor supervisor;
  private final EntityWriter writer;
  private final Map<String, EffectStats> effects;
  private final NodeMetrics metrics;
  private final NodeDirectory directory;
  private final Ownership ownership;
  /** The server's certificate as the node's start read and checked it; null without TLS. */
  private final ServerCertificate certificate;
  private Forwarder forwarder;
  private ClusterQueries queries;
  private ViewPositions viewPositions;
  private StateReads stateReads;
  private ChangeStream changeStreams;
  private HttpAccess access;
  private EntityCounts entityCounts;
  private ConsolePage console;
  private Admin admin;
  private NodeHealth health;
  private HttpServer server;
  private CertificateReloader reloader;
  private final List<String> routes = new ArrayList<>();

  public HttpApiVerticle(NodeConfig config, EntityTypes types, EntityStore store, FoldWatch watch,
                         FoldProgress progress, EntityWriter writer, Map<String, EffectStats> effects,
                         Ownership ownership, NodeDirectory directory, Supervisor supervisor,
                         ServerCertificate certificate, NodeMetrics metrics) {
    this.metrics = metrics;
    this.supervisor = supervisor;
    this.certificate = certificate;
    this.config = config;
    this.types = types;
    this.store = store;
    this.watch = watch;
    this.progress = progress;
    this.writer = writer;
    this.effects = effects;
    this.directory = directory;
    this.ownership = ownership;
  }

  /** The port the server listens on, once started. */
  public int port() {
    return server.actualPort();
  }

  /** "METHOD /path" of every route this API serves, for the test that keeps the OpenAPI description true. */
  public List<String> routes() {
    return List.copyOf(routes);
  }

  @Override
  public Future<?> start() {
    forwarder = new Forwarder(vertx, config, ownership, directory);
    queries = new ClusterQueries(vertx, config, ownership, directory, forwarder, new LocalQueries(store), watch);
    viewPositions = new ViewPositions(vertx, config, ownership, forwarder, watch);
    stateReads = new StateReads(context, store);
    changeStreams = new ChangeStream(vertx, types, store, watch, config.http().streamMaxPendingBytes());
    access = new HttpAccess(vertx, config.auth());
    entityCounts = new EntityCounts(vertx, config, types, store, ownership, directory, forwarder);
    registerMeters();
    return ConsolePage.load(vertx).onSuccess(page -> console = page).compose(page -> vertx.executeBlocking(() -> {
      admin = Admin.create(KafkaClients.admin(config.kafka(), config.app() + "-readiness"));
      return null;
    })).compose(v -> {
      health = new NodeHealth(vertx, config, supervisor, store, progress, admin);
      HttpServerOptions options = serverOptions(certificate);
      return vertx.createHttpServer(options).requestHandler(router()).listen().onSuccess(s -> {
        server = s;
        LOG.info("HTTP API on {}://{}:{}{}", config.http().scheme(), config.http().host(), s.actualPort(),
            certificate == null ? "" : " (HTTP/2 and HTTP/1.1), certificate " + certificate.describe());
        if (certificate != null) {
          reloader = new CertificateReloader(vertx, s, options.getSslOptions(), config.http().tls(), certificate);
        }
      });
    });
  }

  /** Plain HTTP/1.1; with a certificate, TLS only, HTTP/2 offered by ALPN besides HTTP/1.1. */
  private HttpServerOptions serverOptions(ServerCertificate certificate) {
    HttpServerOptions options = new HttpServerOptions().setHost(config.http().host()).setPort(config.http().port());
    if (certificate != null) {
      options.setSsl(true).setUseAlpn(true).setKeyCertOptions(certificate.options());
    }
    return options;
  }

  @Override
  public Future<?> stop() {
    forwarder.close();
    queries.close();
    entityCounts.close();
    if (reloader != null) {
      reloader.stop();
    }
    return (server == null ? Future.succeededFuture() : server.close())
        .eventually(viewPositions::close)
        .eventually(() -> vertx.executeBlocking(() -> {
          if (admin != null) {
            admin.close();
          }
          return null;
        }));
  }

  private Router router() {
    Router router = Router.router(vertx);
    BodyHandler body = BodyHandler.create(false).setBodyLimit(config.http().maxBodyBytes());
    // The most frequent request (an entity's GET) nearly first: the router tries routes in order,
    // most by a regex match. The other routes whose path is two segments after /v1, a list of a
    // view's rows and a position, must come before it, or the entity's route would take them.
    Handler<RoutingContext> readType = access.needs(Role.READ, "type");
    Handler<RoutingContext> readView = access.needs(Role.READ, "view");
    Handler<RoutingContext> readAny = access.needs(Role.READ, null);
    Handler<RoutingContext> admin = access.needs(Role.ADMIN, null);
    // First: every request gets its correlation id (and its access-log line) before any route answers it.
    router.route().handler(new RequestLog(config.http().accessLog(), directory::node));
    router.get("/v1/_views/:view").handler(readView).handler(this::listRows);
    router.get("/v1/_positions/:position").handler(readAny).handler(this::answeredHere).handler(this::published);
    router.get("/v1/:type/:id").handler(readType).handler(this::answeredHere).handler(this::staleIfAsked)
        .handler(this::forwardIfElsewhere).handler(this::getState);
    // A view's rows are the entities of its folded type: read, forwarded and read stale like entities.
    router.get("/v1/_views/:view/:key").handler(readView).handler(this::answeredHere).handler(this::staleRowIfAsked)
        .handler(this::forwardRowIfElsewhere).handler(this::getRow);
    router.get("/v1/_views/:view/:key/changes").handler(readView).handler(this::answeredHere)
        .handler(this::forwardRowStreamIfElsewhere).handler(changeStreams::handleRow);
    router.get("/v1/_views").handler(readAny).handler(this::listViews);
    router.post("/v1/_views/:view/rebuild").handler(admin).handler(this::rebuildView);
    router.get("/v1/_cluster").handler(admin).handler(this::cluster);
    router.get("/v1/_effects").handler(admin).handler(this::effectStatus);
    router.get("/v1/_effects/:worker/parked").handler(admin).handler(ctx -> effectAdmin(ctx, "parked"));
    router.post("/v1/_effects/:worker/parked/:id/replay").handler(admin).handler(ctx -> effectAdmin(ctx, "replay"));
    router.post("/v1/_effects/:worker/parked/:id/skip").handler(admin).handler(ctx -> effectAdmin(ctx, "skip"));
    router.post("/v1/_effects/:worker/parked/:type/:id/replay").handler(admin)
        .handler(ctx -> effectAdmin(ctx, "replay"));
    router.post("/v1/_effects/:worker/parked/:type/:id/skip").handler(admin).handler(ctx -> effectAdmin(ctx, "skip"));
    router.get("/v1/_types").handler(readAny).handler(entityCounts::handle);
    router.get("/v1/:type").handler(readType).handler(this::query);
    router.post("/v1/:type/:id/commands").handler(access.needsWithBody(Role.WRITE, "type")).handler(body)
        .handler(this::answeredHere).handler(this::forwardIfElsewhere).handler(this::command);
    router.post("/v1/:type/:id/events").handler(access.needsWithBody(Role.APPEND, "type")).handler(body)
        .handler(this::answeredHere).handler(this::forwardIfElsewhere).handler(this::appendEvents);
    router.get("/v1/:type/:id/events").handler(readType).handler(this::answeredHere).handler(this::forwardIfElsewhere)
        .handler(this::history);
    router.get("/v1/:type/:id/changes").handler(readType).handler(this::answeredHere)
        .handler(this::forwardStreamIfElsewhere).handler(changeStreams::handle);
    // Open: probes and the description of the API need no credentials.
    router.get("/health").handler(health::health);
    router.get("/ready").handler(health::ready);
    if (config.auth().metricsOpen()) {
      router.get("/metrics").handler(this::metrics);
    } else {
      router.get("/metrics").handler(admin).handler(this::metrics);
    }
    router.get("/openapi.yaml").handler(this::openApi);
    // The console's page and files hold no data: its calls to the API carry the caller's credentials.
    router.get("/console").handler(console::page);
    router.get("/console/:file").handler(console::file);
    router.getRoutes().stream().filter(route -> route.methods() != null)  // not the request log's route of every request
        .forEach(route -> route.methods().forEach(method -> routes.add(method + " " + route.getPath())));
    router.route().last().handler(ctx -> ctx.fail(404));
    router.route().failureHandler(Problems::handle);
    return router;
  }

  /**
   * Names this node on the answer about an entity, its failures included; a request forwarded to
   * the node that folds the entity gets that node's name instead.
   */
  private void answeredHere(RoutingContext ctx) {
    ctx.response().putHeader(Forwarder.ANSWERED_BY, directory.node());
    ctx.next();
  }

  /** Sends a request for an entity that another node folds to that node; lets the rest through. */
  private void forwardIfElsewhere(RoutingContext ctx) {
    if (!forwarder.forward(ctx, types.get(ctx.pathParam("type")).name(), entityId(ctx))) {
      ctx.next();
    }
  }

  private void forwardStreamIfElsewhere(RoutingContext ctx) {
    if (!forwarder.forwardStream(ctx, types.get(ctx.pathParam("type")).name(), entityId(ctx))) {
      ctx.next();
    }
  }

  /**
   * A query of a type's entities, over every partition of the type (see {@link ClusterQueries}); a
   * query another node asks for some partitions only ({@link ClusterQueries#PARTITIONS}) is answered
   * for those, with each item's position so that node can merge. An answer in which some partition
   * was read from a copy ({@code stale=true}) is marked {@code Kfold-Stale: true}.
   */
  private void query(RoutingContext ctx) {
    String type = types.get(ctx.pathParam("type")).name();
    Map<String, List<String>> parameters = new LinkedHashMap<>();
    ctx.queryParams().names().forEach(name -> parameters.put(name, ctx.queryParams().getAll(name)));
    ClusterQueries.Request request = queries.request(type, types.indexes(type), parameters);
    String asked = ctx.request().getHeader(ClusterQueries.PARTITIONS);
    (asked == null ? queries.run(request) : queries.runAsked(request, asked))
        .onSuccess(answer -> {
          if (answer.stale()) {
            ctx.response().putHeader(ClusterQueries.STALE, "true");
          }
          sendJson(ctx, Buffer.buffer(answer.page().toJson(asked != null)), -1);
        })
        .onFailure(ctx::fail);
  }

  private void command(RoutingContext ctx) {
    String type = types.get(ctx.pathParam("type")).name();
    String key = entityId(ctx);
    Options options = writeOptions(ctx);
    JsonNode body = json(ctx);
    JsonNode commandType = body.path("type");
    if (!commandType.isTextual() || commandType.asText().isBlank()) {
      throw KfoldException.badRequest("the body must be {\"type\": \"<command>\", \"payload\": {...}}: type is missing");
    }
    JsonNode payload = body.has("payload") ? body.get("payload") : JsonNodeFactory.instance.objectNode();
    if (!payload.isObject()) {
      throw KfoldException.badRequest("the command's payload must be a JSON object");
    }
    writer.handle(type, key, new Command(commandType.asText(), payload), options)
        .onSuccess(written -> sendWritten(ctx, written))
        .onFailure(ctx::fail);
  }

  private void appendEvents(RoutingContext ctx) {
    String type = types.get(ctx.pathParam("type")).name();
    String key = entityId(ctx);
    Options options = writeOptions(ctx);
    List<NewEvent> events = newEvents(json(ctx));
    writer.append(type, key, events, options)
        .onSuccess(written -> sendWritten(ctx, written))
        .onFailure(ctx::fail);
  }

  private static void sendWritten(RoutingContext ctx, Written written) {
    sendJson(ctx, written.toJson(), written.version());
  }

  /**
   * The nodes of the group as their claims say: where each answers, the partitions it folds, and
   * whether it is live; a dead node is shown, with the partitions it last claimed, until it is dropped.
   */
  private void cluster(RoutingContext ctx) {
    ObjectNode body = JsonNodeFactory.instance.objectNode().put("node", directory.node());
    ObjectNode nodes = body.putObject("nodes");
    directory.nodes().forEach((name, member) -> {
      var claim = member.claim();
      ObjectNode node = nodes.putObject(name).put("url", claim.url()).put("generation", claim.generation())
          .put("status", member.live() ? "live" : "dead");
      if (!member.live()) {
        node.put("deadSince", member.deadSince().toString());
      }
      claim.partitions().stream().sorted().forEach(node.putArray("partitions")::add);
    });
    ObjectNode lag = body.putObject("lag");
    progress.lag().forEach((partition, records) -> lag.put(partition.toString(), records));
    progress.standbys().stream().map(Object::toString).sorted().forEach(body.putArray("standbys")::add);
    progress.standbysReadToEnd().stream().map(Object::toString).sorted().forEach(body.putArray("standbysReadToEnd")::add);
    sendJson(ctx, body, -1);
  }

  private void effectStatus(RoutingContext ctx) {
    ObjectNode body = JsonNodeFactory.instance.objectNode();
    ObjectNode workers = body.putObject("workers");
    effects.forEach((name, stats) -> workers.set(name, stats.toJson()));
    sendJson(ctx, body, -1);
  }

  /**
   * Lists, replays or skips a worker's parked events; this node's worker answers over the event bus, never
   * another node's on a clustered one,
   * a replay or skip once the node that delivers the entity has carried it out.
   */
  private void effectAdmin(RoutingContext ctx, String action) {
    String worker = ctx.pathParam("worker");
    if (!effects.containsKey(worker)) {
      throw KfoldException.notFound("no effect worker '" + worker + "'; this node runs " + effects.keySet());
    }
    JsonObject request = new JsonObject();
    if (!action.equals("parked")) {
      request.put("key", EntityIds.check(ctx.pathParam("id")));
      if (ctx.pathParam("type") != null) {
        request.put("type", types.get(ctx.pathParam("type")).name());
      }
    }
    // Longer than a worker waits for a replay or skip to be carried out (30 s), so that its 504 gets through.
    vertx.eventBus().<JsonObject>request("kfold.effects." + worker + "." + action, request,
            new DeliveryOptions().setSendTimeout(40_000).setLocalOnly(true))
        .onSuccess(reply -> ctx.response().putHeader("content-type", "application/json").end(reply.body().toBuffer()))
        .onFailure(e -> ctx.fail(e instanceof ReplyException r && r.failureCode() >= 400
            ? new KfoldException(r.failureCode(), HttpResponseStatus.valueOf(r.failureCode()).reasonPhrase(), r.getMessage(), Map.of())
            : e));
  }

  private void openApi(RoutingContext ctx) {
    vertx.executeBlocking(() -> {
      try (var in = HttpApiVerticle.class.getResourceAsStream("/openapi.yaml")) {
        return Buffer.buffer(in.readAllBytes());
      }
    }).onSuccess(yaml -> ctx.response().putHeader("content-type", "application/yaml").end(yaml)).onFailure(ctx::fail);
  }

  private void getState(RoutingContext ctx) {
    String type = types.get(ctx.pathParam("type")).name();
    String key = entityId(ctx);
    long minVersion = longParam(ctx, "minVersion", 0, 0, Long.MAX_VALUE);
    long timeoutMs = longParam(ctx, "timeoutMs", 5000, 0, config.http().maxWaitMs());
    // The current state: at minVersion at least, or else once this node is current on the partition
    // (one it was just given back may hold a state older than what its previous owner answered).
    Future<Void> reached = minVersion > 0 ? watch.awaitVersion(type, key, minVersion, timeoutMs)
        : ownership.awaitCurrent(vertx, ownership.partition(type, key), System.currentTimeMillis() + timeoutMs,
            "this node cannot read " + type + " '" + key + "' yet");
    reached.compose(v -> stateReads.get(type, key))
        .map(stored -> found(stored, type, key))
        .onSuccess(stored -> sendState(ctx, key, stored))
        .onFailure(ctx::fail);
  }

  private static void sendState(RoutingContext ctx, String key, StoredEntity stored) {
    // The stored state is JSON already: it goes into the answer as it is, unparsed.
    Buffer body = Buffer.buffer(stored.state().length + key.length() + 48)
        .appendString("{\"key\":").appendBytes(quoted(key))
        .appendString(",\"version\":" + stored.version() + ",\"state\":").appendBytes(stored.state())
        .appendString("}");
    sendJson(ctx, body, stored.version());
  }

  /**
   * {@code ?stale=true}: a node that holds a copy of an entity another node folds (a standby, or a
   * former owner) answers from it, marked {@code Kfold-Stale: true}, instead of asking the owner: a
   * read that keeps working while the owner is away, possibly behind it. Without a copy (or one
   * below {@code minVersion}), the request goes on to the owner.
   */
  private void staleIfAsked(RoutingContext ctx) {
    String type = types.get(ctx.pathParam("type")).name();
    String key = entityId(ctx);
    if (!"true".equals(ctx.request().getParam("stale")) || ownership.owns(type, key)) {
      ctx.next();
      return;
    }
    long minVersion = longParam(ctx, "minVersion", 0, 0, Long.MAX_VALUE);
    stateReads.get(type, key).onSuccess(stored -> {
      if (stored == null || stored.version() < minVersion) {
        ctx.next();
      } else {
        ctx.response().putHeader("Kfold-Stale", "true");
        sendState(ctx, key, stored);
      }
    }).onFailure(ctx::fail);
  }

  /** {@code ?stale=true} for a view's row: as {@link #staleIfAsked} for an entity. */
  private void staleRowIfAsked(RoutingContext ctx) {
    ViewType view = types.view(ctx.pathParam("view"));
    String key = rowKey(ctx);
    // A copy cannot wait for a position: the node that folds the row answers a minPosition.
    if (!"true".equals(ctx.request().getParam("stale")) || ctx.request().getParam("minPosition") != null
        || ownership.owns(view.name(), key)) {
      ctx.next();
      return;
    }
    stateReads.get(view.name(), key).onSuccess(stored -> {
      if (stored == null) {
        ctx.next();
      } else {
        ctx.response().putHeader("Kfold-Stale", "true");
        sendRow(ctx, view, key, stored);
      }
    }).onFailure(ctx::fail);
  }

  private void forwardRowIfElsewhere(RoutingContext ctx) {
    if (!forwarder.forward(ctx, types.view(ctx.pathParam("view")).name(), rowKey(ctx))) {
      ctx.next();
    }
  }

  private void forwardRowStreamIfElsewhere(RoutingContext ctx) {
    if (!forwarder.forwardStream(ctx, types.view(ctx.pathParam("view")).name(), rowKey(ctx))) {
      ctx.next();
    }
  }

  /**
   * A row, read on the node that folds it; with {@code ?minPosition=}, once it holds every
   * contribution of the writes up to that position (see {@link ViewPositions}), 504 after {@code timeoutMs}.
   */
  private void getRow(RoutingContext ctx) {
    ViewType view = types.view(ctx.pathParam("view"));
    String key = rowKey(ctx);
    String token = ctx.request().getParam("minPosition");
    long timeoutMs = longParam(ctx, "timeoutMs", 5000, 0, config.http().maxWaitMs());
    TopicPartition partition = viewPositions.rowPartition(view, key);
    Future<Void> applied = token == null
        ? ownership.awaitCurrent(vertx, partition, System.currentTimeMillis() + timeoutMs,
            "this node cannot read row '" + key + "' of view '" + view.definition().name() + "' yet")
        : viewPositions.awaitApplied(viewPositions.position(view, token), List.of(partition), timeoutMs);
    applied.compose(v -> stateReads.get(view.name(), key)).onSuccess(stored -> sendRow(ctx, view, key, stored))
        .onFailure(ctx::fail);
  }

  /**
   * {@code GET /v1/_positions/{position}}: answers once everything the writes up to the position
   * brought (changes, view contributions) is published, as the node that folds its partition
   * tells (asked when it is another); 504 after {@code timeoutMs}.
   */
  private void published(RoutingContext ctx) {
    String token = ctx.pathParam("position");
    Position position = viewPositions.position(token, types.all().stream().map(EntityType::name).toList());
    long timeoutMs = longParam(ctx, "timeoutMs", 5000, 0, config.http().maxWaitMs());
    viewPositions.awaitPublished(position, timeoutMs, ctx.request().getHeader(Forwarder.FORWARDED_BY) != null)
        .onSuccess(v -> sendJson(ctx, JsonNodeFactory.instance.objectNode().put("position", token)
            .put("published", true), -1))
        .onFailure(ctx::fail);
  }

  /**
   * {@code {key, row, entities}}. A row whose entities all left is kept in the store (its marks of
   * what it applied must stay) but reads as absent.
   */
  private static void sendRow(RoutingContext ctx, ViewType view, String key, StoredEntity stored) {
    ObjectNode body;
    try {
      body = view.answer(key, stored);
    } catch (KfoldException e) {
      ctx.fail(e);  // no version of the view answers yet
      return;
    }
    if (body == null) {
      ctx.fail(KfoldException.notFound("view '" + view.definition().name() + "' has no row '" + key + "'"));
      return;
    }
    sendJson(ctx, body, -1);
  }

  /**
   * {@code GET /v1/_views/{view}?limit=&after=&prefix=}: the view's rows in key order, over every
   * partition, as a query of every entity of its folded type (see {@link ClusterQueries}), rows
   * without entities passed over. Another node asking for some partitions gets the page as a query's.
   */
  private void listRows(RoutingContext ctx) {
    ViewType view = types.view(ctx.pathParam("view"));
    Map<String, List<String>> parameters = new LinkedHashMap<>();
    ctx.queryParams().names().forEach(name -> parameters.put(name, ctx.queryParams().getAll(name)));
    ClusterQueries.Request request = queries.rowsRequest(view.name(), parameters, view::hasEntities,
        (token, timeoutMs) -> {
          Position position = viewPositions.position(view, token);
          return partitions -> viewPositions.awaitApplied(position, partitions, timeoutMs);
        });
    String asked = ctx.request().getHeader(ClusterQueries.PARTITIONS);
    (asked == null ? queries.run(request) : queries.runAsked(request, asked))
        .onSuccess(answer -> {
          if (answer.stale()) {
            ctx.response().putHeader(ClusterQueries.STALE, "true");
          }
          try {
            sendJson(ctx, asked != null ? Buffer.buffer(answer.page().toJson(true)) : rowsJson(view, answer.page()), -1);
          } catch (KfoldException e) {
            ctx.fail(e);  // no version of the view answers yet
          }
        })
        .onFailure(ctx::fail);
  }

  /** {@code {"items": [{key, row, entities}…], "next"}}. */
  private static Buffer rowsJson(ViewType view, LocalQueries.Page page) {
    ObjectNode body = JsonNodeFactory.instance.objectNode();
    var items = body.putArray("items");
    for (LocalQueries.Item item : page.items()) {
      items.add(view.answer(item.key(), new StoredEntity(item.version(), 0, null, item.state())));
    }
    body.put("next", page.next());
    return Buffer.buffer(Envelopes.toBytes(body));
  }

  /**
   * The views this node keeps: what they are from, their fingerprints, the version reads answer
   * from and the one being built (the same once it is live), in how many partitions of the rows
   * the target is complete, and the contributions not yet folded in the partitions this node folds.
   */
  private void listViews(RoutingContext ctx) {
    ObjectNode body = JsonNodeFactory.instance.objectNode();
    var list = body.putArray("views");
    Map<TopicPartition, Long> lag = progress.lag();
    for (ViewType view : types.views()) {
      ObjectNode item = list.addObject().put("name", view.definition().name());
      view.definition().from().forEach(item.putArray("from")::add);
      ViewVersion answering = view.answering();
      ViewVersion target = view.target();
      item.put("fingerprint", view.definition().fingerprint())
          .put("version", answering == null ? null : answering.toString())
          .put("target", target.toString())
          .put("state", target.equals(answering) ? "live" : "building")
          .put("partitionsBuilt", directory.partitionsComplete(view, target))
          .put("partitions", config.kafka().partitions())
          .put("lag", lag.entrySet().stream().filter(e -> e.getKey().topic().equals(config.eventsTopic(view.name())))
              .mapToLong(e -> Math.max(0, e.getValue())).sum());
    }
    sendJson(ctx, body, -1);
  }

  /**
   * {@code POST /v1/_views/{view}/rebuild}: every node builds the view's next generation from its
   * stored states while the current version answers; reads switch once it is complete everywhere.
   */
  private void rebuildView(RoutingContext ctx) {
    ViewType view = types.view(ctx.pathParam("view"));
    vertx.executeBlocking(() -> directory.requestRebuild(view), false).onSuccess(target -> {
      ObjectNode body = JsonNodeFactory.instance.objectNode().put("name", view.definition().name());
      ViewVersion answering = view.answering();
      body.put("version", answering == null ? null : answering.toString()).put("target", target.toString())
          .put("state", target.equals(answering) ? "live" : "building");
      ctx.response().setStatusCode(202);
      sendJson(ctx, body, -1);
    }).onFailure(e -> ctx.fail(KfoldException.unavailable("asking the nodes to rebuild view '"
        + view.definition().name() + "' failed: " + e.getMessage())));
  }

  private static String rowKey(RoutingContext ctx) {
    return EntityIds.check(ctx.pathParam("key"));
  }

  static byte[] quoted(String text) {
    byte[] inner = JsonStringEncoder.getInstance().quoteAsUTF8(text);
    byte[] quoted = new byte[inner.length + 2];
    quoted[0] = '"';
    System.arraycopy(inner, 0, quoted, 1, inner.length);
    quoted[quoted.length - 1] = '"';
    return quoted;
  }

  private void history(RoutingContext ctx) {
    String type = types.get(ctx.pathParam("type")).name();
    String key = entityId(ctx);
    long fromVersion = longParam(ctx, "fromVersion", 1, 1, Long.MAX_VALUE);
    int limit = (int) longParam(ctx, "limit", 100, 1, MAX_HISTORY_PAGE);
    vertx.executeBlocking(() -> {
      StoredEntity stored = store.get(type, key);
      return stored == null ? null : store.history(type, key, fromVersion, limit);
    }, false).map(events -> found(events, type, key)).onSuccess(events -> {
      Buffer body = Buffer.buffer().appendString("{\"key\":").appendBytes(quoted(key)).appendString(",\"events\":[");
      for (int i = 0; i < events.size(); i++) {
        body.appendBytes(events.get(i)).appendString(i < events.size() - 1 ? "," : "");
      }
      sendJson(ctx, body.appendString("]}"), -1);
    }).onFailure(ctx::fail);
  }

  /** The node's registry as Prometheus text; scraped on a worker, as some gauges read the store. */
  private void metrics(RoutingContext ctx) {
    vertx.executeBlocking(metrics::scrape, false)
        .onSuccess(text -> ctx.response().putHeader("content-type", "text/plain; version=0.0.4; charset=utf-8").end(text))
        .onFailure(ctx::fail);
  }

  /** The HTTP API's own meters, read at each scrape. */
  private void registerMeters() {
    metrics.httpCounter("kfold.http.forwarded", "Requests for entities another node folds, sent to that node.",
        forwarder::forwarded);
    metrics.httpGauge("kfold.http.forward.waiting", "Requests waiting for the node that folds their entity to be known.",
        forwarder::waitingForOwner);
    metrics.httpCounter("kfold.http.change.streams.cut", "Change streams ended because their client read too slowly.",
        changeStreams::cut);
    if (certificate != null) {
      metrics.httpCounter("kfold.http.tls.reloads", "New certificates the HTTP API took from its files.",
          () -> reloader == null ? 0 : reloader.reloads());
      metrics.httpCounter("kfold.http.tls.reload.failures", "Checks that found changed certificate files the HTTP API"
          + " could not use (it kept its certificate).", () -> reloader == null ? 0 : reloader.failures());
    }
    metrics.httpGauge("kfold.http.change.stream.pending.bytes", "Bytes the open change streams hold for their clients.",
        changeStreams::pendingBytes);
    metrics.httpGauge("kfold.http.change.stream.pending.bytes.max",
        "The most bytes one change stream has held for its client.", changeStreams::mostPendingBytes);
  }

  // Request parsing: each failure is a 400 that says what was wrong.

  static String entityId(RoutingContext ctx) {
    return EntityIds.check(ctx.pathParam("id"));
  }

  private static Options writeOptions(RoutingContext ctx) {
    String idempotencyKey = Options.checkedIdempotencyKey(ctx.request().getHeader("Idempotency-Key"));
    // Set by RequestLog: the caller's or a new one.
    return new Options(ifMatch(ctx), idempotencyKey, ctx.request().getHeader(RequestLog.CORRELATION_ID),
        HttpAccess.principal(ctx));
  }

  private static OptionalLong ifMatch(RoutingContext ctx) {
    String header = ctx.request().getHeader("If-Match");
    if (header == null) {
      return OptionalLong.empty();
    }
    var matcher = VERSION.matcher(header.trim());
    if (!matcher.matches()) {
      throw KfoldException.badRequest("If-Match must be an entity version such as \"3\", was " + header);
    }
    return OptionalLong.of(Long.parseLong(matcher.group(2)));
  }

  static long longParam(RoutingContext ctx, String name, long defaultValue, long min, long max) {
    String raw = ctx.queryParams().get(name);
    if (raw == null) {
      return defaultValue;
    }
    try {
      long value = Long.parseLong(raw);
      if (value >= min && value <= max) {
        return value;
      }
    } catch (NumberFormatException ignored) {
      // reported below
    }
    throw KfoldException.badRequest("query parameter " + name + " must be a whole number from " + min + " to " + max
        + ", was '" + raw + "'");
  }

  private static JsonNode json(RoutingContext ctx) {
    Buffer body = ctx.body().buffer();
    if (body == null || body.length() == 0) {
      throw KfoldException.badRequest("the request has no body; send a JSON object");
    }
    try {
      return Envelopes.parse(body.getBytes());
    } catch (Envelopes.NumberNotKeptException e) {
      throw KfoldException.badRequest("the body is refused: " + e.getMessage());
    } catch (IOException e) {
      throw KfoldException.badRequest("the body is not valid JSON: " + e.getMessage().lines().findFirst().orElse(""));
    }
  }

  private List<NewEvent> newEvents(JsonNode body) {
    return AppendRequest.events(body, config.writes().maxEvents());
  }

  private static <T> T found(T value, String type, String key) {
    if (value == null) {
      throw KfoldException.notFound("no " + type + " '" + key + "'");
    }
    return value;
  }

  static JsonNode parse(byte[] stored) {
    try {
      return Envelopes.parse(stored);
    } catch (IOException e) {
      throw new IllegalStateException("stored JSON is unreadable", e);
    }
  }

  private static void sendJson(RoutingContext ctx, JsonNode body, long version) {
    sendJson(ctx, Buffer.buffer(Envelopes.toBytes(body)), version);
  }

  private static void sendJson(RoutingContext ctx, Buffer body, long version) {
    if (version >= 0) {
      ctx.response().putHeader("ETag", "\"" + version + "\"");
    }
    ctx.response().putHeader("content-type", "application/json").end(body);
  }

}
