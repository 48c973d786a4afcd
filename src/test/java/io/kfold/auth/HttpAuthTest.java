package io.kfold.auth;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.kfold.config.NodeConfig;
import io.kfold.OpenApiContract;
import io.kfold.types.Envelopes;
import io.kfold.RunningNode;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.kfold.cluster.Forwarder;
import io.vertx.core.MultiMap;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * One node in mode api-keys: every route it serves against every role, the refusals (401 with the
 * challenge, 403), nothing written on a refusal, the principal recorded, and a request that claims
 * to come from another node without that node's proof.
 */
@ExtendWith(TestBroker.class)
class HttpAuthTest {

  static final String SECRET = "a-cluster-secret-for-the-tests";

  /** Keys by name: the key itself (what a caller sends) and its roles. */
  static final Map<String, List<String>> ROLES = new LinkedHashMap<>();
  static {
    ROLES.put("reader", List.of("read"));
    ROLES.put("writer", List.of("write"));
    ROLES.put("appender", List.of("append"));
    ROLES.put("admin", List.of("admin"));
    ROLES.put("orders-clerk", List.of("write:orders", "read:orders", "read:customers"));
  }

  /** What each served route needs: a role, or null for open. A route served and missing here fails the test. */
  private static final Map<String, String> NEEDS = new LinkedHashMap<>();
  static {
    NEEDS.put("GET /v1/_views/:view", "read");
    NEEDS.put("GET /v1/_positions/:position", "read");
    NEEDS.put("GET /v1/:type/:id", "read");
    NEEDS.put("GET /v1/_views/:view/:key", "read");
    NEEDS.put("GET /v1/_views/:view/:key/changes", "read");
    NEEDS.put("GET /v1/_views", "read");
    NEEDS.put("GET /v1/_types", "read");
    NEEDS.put("POST /v1/_views/:view/rebuild", "admin");
    NEEDS.put("GET /v1/_cluster", "admin");
    NEEDS.put("GET /v1/_effects", "admin");
    NEEDS.put("GET /v1/_effects/:worker/parked", "admin");
    NEEDS.put("POST /v1/_effects/:worker/parked/:id/replay", "admin");
    NEEDS.put("POST /v1/_effects/:worker/parked/:id/skip", "admin");
    NEEDS.put("POST /v1/_effects/:worker/parked/:type/:id/replay", "admin");
    NEEDS.put("POST /v1/_effects/:worker/parked/:type/:id/skip", "admin");
    NEEDS.put("GET /v1/:type", "read");
    NEEDS.put("POST /v1/:type/:id/commands", "write");
    NEEDS.put("POST /v1/:type/:id/events", "append");
    NEEDS.put("GET /v1/:type/:id/events", "read");
    NEEDS.put("GET /v1/:type/:id/changes", "read");
    NEEDS.put("GET /health", null);
    NEEDS.put("GET /ready", null);
    NEEDS.put("GET /metrics", "admin");  // auth.metrics: admin in this test
    NEEDS.put("GET /openapi.yaml", null);
    NEEDS.put("GET /console", null);
    NEEDS.put("GET /console/:file", null);
  }

  private static final String RENAME = "{\"type\":\"Renamed\",\"payload\":{\"name\":\"Ada\"}}";
  private static final String APPEND = "{\"events\":[{\"type\":\"Registered\",\"payload\":{\"name\":\"Ada\"}}]}";

  private static RunningNode running;
  private static HttpClient http;

  @BeforeAll
  static void start() throws Exception {
    Path dir = TestNodes.tempDir("auth");
    String app = TestNodes.newApp("auth");
    Map<String, String> env = TestNodes.withSection(TestNodes.env(app, dir), dir, "auth", apiKeysSection("admin"));
    running = RunningNode.start(NodeConfig.load(env));
    http = running.vertx.createHttpClient();
  }

  @AfterAll
  static void stop() throws Exception {
    if (running != null) {
      http.close();
      running.close();
    }
  }

  /** The auth section of mode api-keys with the keys of {@link #ROLES}; {@code metrics}: open or admin. */
  static String apiKeysSection(String metrics) {
    StringBuilder yaml = new StringBuilder("mode: api-keys\nmetrics: " + metrics + "\nclusterSecret: " + SECRET
        + "\napiKeys:\n");
    ROLES.forEach((name, roles) -> yaml.append("  ").append(name).append(": {sha256: ").append(TestNodes.sha256(key(name)))
        .append(", roles: [").append(String.join(", ", roles.stream().map(r -> "\"" + r + "\"").toList()))
        .append("]}\n"));
    return yaml.toString();
  }

  /** The API key of the key named {@code name}: only its hash is in the configuration. */
  static String key(String name) {
    return "key-of-" + name + "-0123456789";
  }


  static Map<String, String> bearer(String name) {
    return Map.of("Authorization", "Bearer " + key(name));
  }

  /** A request's status and headers; a change stream's body is not read, its connection is closed. */
  private record Answer(int status, MultiMap headers, String body) {}

  private static Answer send(HttpMethod method, String path, String body, Map<String, String> headers) throws Exception {
    RequestOptions options = new RequestOptions().setMethod(method).setPort(running.node().httpPort())
        .setHost("127.0.0.1").setURI(path);
    headers.forEach(options::putHeader);
    if (body != null) {
      options.putHeader("content-type", "application/json");
    }
    return http.request(options).compose(request -> {
      var sent = body == null ? request.send() : request.send(Buffer.buffer(body));
      return sent.compose((HttpClientResponse response) -> {
        if (String.valueOf(response.getHeader("content-type")).startsWith("text/event-stream")) {
          response.exceptionHandler(e -> { });  // the reset below ends it: no error
          request.reset();
          return io.vertx.core.Future.succeededFuture(new Answer(response.statusCode(), response.headers(), ""));
        }
        return response.body().map(b -> new Answer(response.statusCode(), response.headers(), b.toString()));
      });
    }).await(40, TimeUnit.SECONDS);
  }

  /** A path of the route with its parameters filled in; writes go to {@code entity}. */
  private static String path(String route, String entity) {
    return route.substring(route.indexOf(' ') + 1)
        .replace(":type/:id", "users/" + entity)
        .replace(":type", "users")
        .replace(":id", entity)
        .replace(":view/rebuild", "no-such-view/rebuild")  // a real rebuild would be work for nothing
        .replace(":view", "customers")
        .replace(":key", "a@b.c")
        .replace(":worker", "no-such-worker")
        .replace(":position", "not-a-position");
  }

  /** The type or view a request on the route names, as {@link #path} fills it in; null when it names none. */
  private static String typeOf(String route) {
    return route.contains(":type") ? "users" : route.contains(":view") && !route.endsWith("/rebuild") ? "customers" : null;
  }

  /** Whether the key named {@code caller} holds {@code role} for {@code type}, a role limited to a type counting for it. */
  private static boolean may(String caller, String role, String type) {
    return ROLES.getOrDefault(caller, List.of()).stream()
        .anyMatch(grant -> grant.equals(role) || type != null && grant.equals(role + ":" + type)
            || type == null && grant.startsWith(role + ":") && !role.equals("admin"));
  }

  private static String body(String route) {
    return route.endsWith("/commands") ? RENAME : route.endsWith("/events") && route.startsWith("POST") ? APPEND : null;
  }

  @Test
  @DisplayName("every route the node serves against every role: the role it needs gets through, every other role gets"
      + " 403, no credentials and a bad key 401 with the challenge; a refused write or append appends nothing")
  void everyRouteEveryRole() throws Exception {
    List<String> served = running.node().httpRoutes();
    assertThat(new TreeSet<>(NEEDS.keySet())).as("every served route has a rule in this test")
        .isEqualTo(new TreeSet<>(served));
    // The entity refused writes aim at: at version 1 before, and still after (checked at the end).
    assertThat(send(HttpMethod.POST, "/v1/users/guarded/events", APPEND, bearer("appender")).status()).isEqualTo(200);
    String yaml = send(HttpMethod.GET, "/openapi.yaml", null, Map.of()).body();
    OpenApiContract contract = OpenApiContract.parse(yaml);
    JsonNode described = new ObjectMapper(new YAMLFactory()).readTree(yaml).path("paths");
    int allowedWrites = 0;
    for (String route : served) {
      String needs = NEEDS.get(route);
      HttpMethod method = HttpMethod.valueOf(route.substring(0, route.indexOf(' ')));
      String documented = route.substring(route.indexOf(' ') + 1).replaceAll(":(\\w+)", "{$1}");
      assertThat(described.path(documented).path(method.name().toLowerCase()).path("x-kfold-role").textValue())
          .as("the role the description names for " + route).isEqualTo(needs);
      List<String> callers = new ArrayList<>(ROLES.keySet());
      callers.add("nobody");
      callers.add("a bad key");
      for (String caller : callers) {
        boolean allowed = needs == null || may(caller, needs, typeOf(route));
        String entity = allowed ? "w" + allowedWrites++ : "guarded";
        Map<String, String> headers = switch (caller) {
          case "nobody" -> Map.of();
          case "a bad key" -> Map.of("Authorization", "Bearer not-a-key-of-this-node");
          default -> bearer(caller);
        };
        Answer answer = send(method, path(route, entity), body(route), headers);
        String what = route + " as " + caller + ": " + answer.status() + " " + answer.body();
        if (allowed) {
          assertThat(answer.status()).as(what).isNotIn(401, 403);
        } else if (caller.equals("nobody") || caller.equals("a bad key")) {
          assertThat(answer.status()).as(what).isEqualTo(401);
          assertThat(answer.headers().get("WWW-Authenticate")).as(what).isEqualTo(caller.equals("nobody")
              ? "Bearer realm=\"kfold\"" : "Bearer realm=\"kfold\", error=\"invalid_token\"");
          assertThat(answer.headers().get("content-type")).as(what).isEqualTo("application/problem+json");
        } else {
          assertThat(answer.status()).as(what).isEqualTo(403);
          assertThat(answer.headers().get("content-type")).as(what).isEqualTo("application/problem+json");
        }
        if (!allowed) {
          contract.assertAnswer(method.name(), documented, new Reply(answer.status(),
              answer.headers().get("content-type"), null, Envelopes.parse(answer.body().getBytes(StandardCharsets.UTF_8)),
              answer.headers()));
        }
      }
    }
    assertNothingAppendedTo("guarded");
  }

  /** A write that expects version 1 succeeds: no refused write or append reached the entity before it. */
  private static void assertNothingAppendedTo(String entity) throws Exception {
    Answer sentinel = send(HttpMethod.POST, "/v1/users/" + entity + "/events", APPEND,
        Map.of("Authorization", "Bearer " + key("appender"), "If-Match", "\"1\""));
    assertThat(sentinel.status()).as("a sentinel append after version 1: " + sentinel.body()).isEqualTo(200);
    assertThat(sentinel.headers().get("ETag")).isEqualTo("\"2\"");
  }

  @Test
  @DisplayName("a role limited to a type allows that type (or view) only: write:orders places an order, and is"
      + " refused on users; read:customers reads that view, not another")
  void rolesLimitedToATypeOrView() throws Exception {
    String place = "{\"type\":\"place\",\"payload\":{\"customerEmail\":\"a@b.c\",\"items\":[{\"sku\":\"x\","
        + "\"quantity\":1,\"price\":5}]}}";
    Map<String, String> clerk = bearer("orders-clerk");
    assertThat(send(HttpMethod.POST, "/v1/orders/limited-1/commands", place, clerk).status()).isEqualTo(200);
    assertThat(send(HttpMethod.GET, "/v1/orders/limited-1", null, clerk).status()).isEqualTo(200);
    assertThat(send(HttpMethod.POST, "/v1/users/limited-1/commands", RENAME, clerk).status()).isEqualTo(403);
    assertThat(send(HttpMethod.GET, "/v1/users/limited-1", null, clerk).status()).isEqualTo(403);
    assertThat(send(HttpMethod.GET, "/v1/_views/customers", null, clerk).status()).isNotIn(401, 403);
    assertThat(send(HttpMethod.GET, "/v1/_views/order-status", null, clerk).status()).isEqualTo(403);
    // No write reached users/limited-1: it does not exist.
    assertThat(send(HttpMethod.GET, "/v1/users/limited-1", null, bearer("reader")).status()).isEqualTo(404);
  }

  @Test
  @DisplayName("every accepted command and raw append records its caller in each event's meta.principal")
  void principalRecorded() throws Exception {
    assertThat(send(HttpMethod.POST, "/v1/users/recorded/commands", RENAME, bearer("writer")).status()).isEqualTo(200);
    assertThat(send(HttpMethod.POST, "/v1/users/recorded/events", APPEND, bearer("appender")).status()).isEqualTo(200);
    Reply history = running.call(HttpMethod.GET, "/v1/users/recorded/events", null, bearer("reader"));
    assertThat(history.status()).isEqualTo(200);
    List<String> principals = new ArrayList<>();
    history.body().path("events").forEach(event -> principals.add(event.path("meta").path("principal").asText()));
    assertThat(principals).containsExactly("writer", "appender");
  }

  @Test
  @DisplayName("a request marked as forwarded by a node needs that node's proof: none, a wrong one or a stale one"
      + " is a 401 and appends nothing; with a valid proof and no caller the node may append, not administer")
  void forwardedNeedsANodeProof() throws Exception {
    assertThat(send(HttpMethod.POST, "/v1/users/proved/events", APPEND, bearer("appender")).status()).isEqualTo(200);
    String uri = "/v1/users/proved/events";
    NodeProof now = new NodeProof(SECRET, Clock.systemUTC());
    NodeProof stale = new NodeProof(SECRET, Clock.offset(Clock.systemUTC(), Duration.ofMinutes(-5)));
    NodeProof otherSecret = new NodeProof("another-secret-of-16-chars", Clock.systemUTC());
    Map<String, Map<String, String>> forged = new LinkedHashMap<>();
    forged.put("no proof", Map.of(Forwarder.FORWARDED_BY, "node-x"));
    forged.put("no proof, with a caller's key", Map.of(Forwarder.FORWARDED_BY, "node-x",
        "Authorization", "Bearer " + key("appender")));
    forged.put("garbage", Map.of(Forwarder.FORWARDED_BY, "node-x", NodeProof.HEADER, "12.zz"));
    forged.put("stale", Map.of(Forwarder.FORWARDED_BY, "node-x", NodeProof.HEADER, stale.sign("node-x", "POST", uri)));
    forged.put("another secret", Map.of(Forwarder.FORWARDED_BY, "node-x",
        NodeProof.HEADER, otherSecret.sign("node-x", "POST", uri)));
    forged.put("another node's name", Map.of(Forwarder.FORWARDED_BY, "node-y",
        NodeProof.HEADER, now.sign("node-x", "POST", uri)));
    forged.put("another request's", Map.of(Forwarder.FORWARDED_BY, "node-x",
        NodeProof.HEADER, now.sign("node-x", "POST", "/v1/users/other/events")));
    for (var attempt : forged.entrySet()) {
      Answer answer = send(HttpMethod.POST, uri, APPEND, attempt.getValue());
      assertThat(answer.status()).as(attempt.getKey() + ": " + answer.body()).isEqualTo(401);
      assertThat(answer.headers().get("WWW-Authenticate")).as(attempt.getKey())
          .isEqualTo("Bearer realm=\"kfold\", error=\"invalid_token\"");
    }
    Answer byNode = send(HttpMethod.POST, uri, APPEND,
        Map.of(Forwarder.FORWARDED_BY, "node-x", NodeProof.HEADER, now.sign("node-x", "POST", uri), "If-Match", "\"1\""));
    assertThat(byNode.status()).as("the node's own append, after version 1: " + byNode.body()).isEqualTo(200);
    Answer adminByNode = send(HttpMethod.GET, "/v1/_cluster", null,
        Map.of(Forwarder.FORWARDED_BY, "node-x", NodeProof.HEADER, now.sign("node-x", "GET", "/v1/_cluster")));
    assertThat(adminByNode.status()).isEqualTo(403);
    JsonNode events = running.call(HttpMethod.GET, uri, null, bearer("reader")).body().path("events");
    assertThat(events.size()).isEqualTo(2);
    assertThat(events.get(1).path("meta").has("principal")).as("a node's own write names no caller").isFalse();
  }
}
