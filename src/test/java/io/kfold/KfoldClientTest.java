package io.kfold;

import io.kfold.KfoldClient.Changes;
import io.kfold.KfoldClient.WriteOptions;
import io.kfold.KfoldClient.EntityChange;
import io.kfold.KfoldClient.Written;
import io.kfold.entity.CommandRejectedException;
import io.kfold.entity.KfoldException;
import io.kfold.entity.VersionConflictException;
import io.kfold.config.NodeConfig;
import io.kfold.http.TestCa;
import io.kfold.node.NodeRuntime;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Map;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

@ExtendWith(TestBroker.class)
class KfoldClientTest {

  /** The API key the HTTP client sends: only its hash is in the node's configuration. */
  private static final String API_KEY = "key-of-the-client-test-0123456789";

  private static Vertx vertx;
  private static NodeRuntime node;
  private static String caPem;

  /** One node whose HTTP API takes HTTPS only (a certificate of a CA of the test's) and API keys. */
  @BeforeAll
  static void startNode() throws Exception {
    vertx = Vertx.vertx();
    Path dir = TestNodes.tempDir("client");
    TestCa ca = TestCa.create("kfold client test CA");
    ca.issue("kfold-client-test").writeTo(dir.resolve("server.pem"), dir.resolve("server.key"));
    ca.writeCertificate(dir.resolve("ca.pem"));
    caPem = Files.readString(dir.resolve("ca.pem"));
    Map<String, String> env = TestNodes.env(TestNodes.newApp("client"), dir);
    env.put("KFOLD_HTTP_TLS_CERTIFICATE", dir.resolve("server.pem").toString());
    env.put("KFOLD_HTTP_TLS_KEY", dir.resolve("server.key").toString());
    env.put("KFOLD_HTTP_TLS_TRUST", dir.resolve("ca.pem").toString());
    String auth = "mode: api-keys\nclusterSecret: a-cluster-secret-for-the-client-test\napiKeys:\n"
        + "  client: {sha256: " + HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256")
        .digest(API_KEY.getBytes(StandardCharsets.UTF_8))) + ", roles: [read, write, append]}\n";
    node = TestNodes.startCaughtUp(vertx, NodeConfig.load(TestNodes.withSection(env, dir, "auth", auth)));
  }

  @AfterAll
  static void stopNode() throws Exception {
    node.stop().await(60, TimeUnit.SECONDS);
    vertx.close().await(30, TimeUnit.SECONDS);
  }

  @Test
  @DisplayName("the same calls through the event-bus client and the HTTP client give the same answers and the same typed failures")
  void sameAnswersOverBothClients() throws Exception {
    KfoldClient bus = KfoldClient.eventBus(vertx);
    KfoldClient http = KfoldClient.http(vertx, KfoldClient.HttpOptions.of("https://127.0.0.1:" + node.httpPort())
        .withBearerToken(API_KEY).withTrustedCaPem(caPem));
    try {
      List<String> overBus = scenario(bus, "bus");
      List<String> overHttp = scenario(http, "http");
      assertThat(overHttp).as("the HTTP client's answers, against the event-bus client's").isEqualTo(overBus);
      // Equal, and right: what each step answered.
      assertThat(overBus).containsExactly(
          "place: version 1 [OrderPlaced] position",
          "conflict: VersionConflictException 409 currentVersion 1",
          "rejected: CommandRejectedException 422 reason the order is already placed (status placed)",
          "not found: NotFoundException 404 no orders 'X-none'",
          "bad id: BadRequestException 400 entity id '-bad' is invalid: use 1 to 128 letters, digits and . _ ~ : @ -,"
              + " starting with a letter or digit",
          "bad append: BadRequestException 400 the body must be {\"events\": [{\"type\": ..., \"payload\": {...}}, ...]}"
              + " with at least one event",
          "pay: version 2 [OrderPaid] position",
          "get at version 2: version 2 paid 9.0",
          "append: version 1 [UserRegistered] position",
          "bad query: BadRequestException 400 query member 'email' must be a string, a number or a boolean, was JsonArray",
          "query by email: [X-user]",
          "view row: 1 orders, spent 9",
          "changes: [1, 2] then [3] paused, then [3]");
    } finally {
      http.close().await(10, TimeUnit.SECONDS);
    }
  }

  @Test
  @DisplayName("over HTTP, a missing key is a 401 and a node whose certificate the client does not trust a 503, both KfoldExceptions")
  void accessFailuresOverHttp() throws Exception {
    String url = "https://127.0.0.1:" + node.httpPort();
    KfoldClient noKey = KfoldClient.http(vertx, KfoldClient.HttpOptions.of(url).withTrustedCaPem(caPem));
    KfoldClient noTrust = KfoldClient.http(vertx, KfoldClient.HttpOptions.of(url).withBearerToken(API_KEY));
    try {
      assertThat(failure(noKey.get("orders", "anything"))).startsWith("KfoldException 401");
      assertThat(failure(noKey.changes("orders", "anything"))).startsWith("KfoldException 401");
      assertThat(failure(noTrust.get("orders", "anything"))).startsWith("KfoldException 503 GET " + url + "/v1/orders/anything");
    } finally {
      noKey.close().await(10, TimeUnit.SECONDS);
      noTrust.close().await(10, TimeUnit.SECONDS);
    }
  }

  @Test
  @DisplayName("a paused stream over the bus keeps its entity's changes while many of other entities of the type pass")
  void pausedBusStreamKeepsItsEntitysChanges() throws Exception {
    KfoldClient bus = KfoldClient.eventBus(vertx);
    Changes paused = bus.changes("users", "burst-a").await(30, TimeUnit.SECONDS);
    List<Long> taken = new CopyOnWriteArrayList<>();
    paused.handler(change -> taken.add(change.version()));
    paused.pause();
    Changes watching = bus.changes("users", "burst-a").await(30, TimeUnit.SECONDS);
    List<Long> seen = new CopyOnWriteArrayList<>();
    watching.handler(change -> seen.add(change.version()));
    // More changes of the type than an event-bus consumer holds while paused (1000), then one of burst-a.
    for (int batch = 0; batch < 12; batch++) {
      List<JsonObject> events = new ArrayList<>();
      for (int i = 0; i < 100; i++) {
        events.add(new JsonObject().put("type", "Noted").put("payload", new JsonObject().put("n", batch * 100 + i)));
      }
      await(bus.append("users", "burst-b", events, WriteOptions.NONE));
    }
    await(bus.append("users", "burst-a", List.of(new JsonObject().put("type", "Noted")
        .put("payload", new JsonObject().put("n", 0))), WriteOptions.NONE));
    Await.until("a stream that was never paused sees burst-a's change", () -> !seen.isEmpty());
    assertThat(taken).as("the paused stream handed over nothing").isEmpty();
    paused.resume();
    Await.until("the resumed stream gets burst-a's change", () -> !taken.isEmpty());
    assertThat(taken).containsExactly(1L);
    paused.close().await(10, TimeUnit.SECONDS);
    watching.close().await(10, TimeUnit.SECONDS);
  }

  /** Every step of the scenario on entities named by {@code prefix}, each answer written with {@code X} for it. */
  private static List<String> scenario(KfoldClient client, String prefix) throws Exception {
    List<String> seen = new ArrayList<>();
    String order = prefix + "-order";
    String email = prefix + "@example.com";

    // A change stream opened before the entity exists, to see its changes from the first.
    Changes changes = client.changes("orders", order).await(30, TimeUnit.SECONDS);
    List<Long> followed = new CopyOnWriteArrayList<>();
    changes.handler(change -> followed.add(change.version()));

    JsonObject place = new JsonObject().put("customerEmail", email)
        .put("items", new JsonArray().add(new JsonObject().put("sku", "mug").put("quantity", 2).put("price", 4.5)));
    Written placed = await(client.command("orders", order, "place", place));
    seen.add("place: " + written(placed));
    seen.add("conflict: " + failure(client.command("orders", order, "pay", new JsonObject().put("amount", 9),
        WriteOptions.expecting(0))));
    seen.add("rejected: " + failure(client.command("orders", order, "place", place)));
    seen.add("not found: " + failure(client.get("orders", order.replace("order", "none"))).replace(prefix, "X"));
    seen.add("bad id: " + failure(client.get("orders", "-bad")));
    seen.add("bad append: " + failure(client.append("users", prefix + "-user", List.of(), WriteOptions.NONE)));
    Written paid = await(client.command("orders", order, "pay", new JsonObject().put("amount", 9),
        WriteOptions.expecting(placed.version()).withIdempotencyKey(prefix + "-pay")));
    seen.add("pay: " + written(paid));
    KfoldClient.State state = await(client.get("orders", order, paid.version(), Duration.ofSeconds(10)));
    seen.add("get at version 2: version " + state.version() + " " + state.state().getString("status") + " "
        + state.state().getValue("total"));

    Written registered = await(client.append("users", prefix + "-user",
        List.of(new JsonObject().put("type", "UserRegistered").put("payload", new JsonObject().put("email", email))),
        WriteOptions.NONE));
    seen.add("append: " + written(registered));
    KfoldClient.Page page = await(client.query("users", new JsonObject().put("email", email)
        .put("minPosition", registered.position()).put("timeoutMs", 10_000)));
    seen.add("bad query: " + failure(client.query("users", new JsonObject().put("email", new JsonArray().add(email))))
        .replace(prefix, "X"));
    seen.add("query by email: " + page.items().stream().map(item -> item.getString("key").replace(prefix, "X")).toList());
    KfoldClient.Row row = await(client.view("customers", email, paid.position(), Duration.ofSeconds(10)));
    seen.add("view row: " + row.row().getValue("orders") + " orders, spent " + row.row().getValue("spent"));

    // The stream saw both changes; paused, it holds the next one until resumed; closed, it sees no more.
    Await.until("the change stream of " + order + " sees versions 1 and 2", () -> followed.size() >= 2);
    List<Long> beforePause = List.copyOf(followed);
    changes.pause();
    Changes sentinel = client.changes("orders", order).await(30, TimeUnit.SECONDS);
    List<EntityChange> seenBySentinel = new CopyOnWriteArrayList<>();
    sentinel.handler(seenBySentinel::add);
    await(client.command("orders", order, "comment", new JsonObject().put("text", "hello")));
    Await.until("a second stream of " + order + " sees version 3", () -> !seenBySentinel.isEmpty());
    List<Long> whilePaused = List.copyOf(followed);
    assertThat(whilePaused).as("the paused stream handed over nothing").isEqualTo(beforePause);
    changes.resume();
    Await.until("the resumed stream of " + order + " gets version 3", () -> followed.size() > whilePaused.size());
    changes.close().await(10, TimeUnit.SECONDS);
    await(client.command("orders", order, "comment", new JsonObject().put("text", "after close")));
    Await.until("the second stream of " + order + " sees version 4", () -> seenBySentinel.size() >= 2);
    sentinel.close().await(10, TimeUnit.SECONDS);
    assertThat(followed).as("the closed stream got nothing after it was closed").containsExactly(1L, 2L, 3L);
    seen.add("changes: " + beforePause + " then " + seenBySentinel.stream().limit(1).map(EntityChange::version).toList()
        + " paused, then " + followed.subList(beforePause.size(), followed.size()));
    return seen;
  }

  private static String written(Written written) {
    return "version " + written.version() + " " + written.events().stream().map(e -> e.getString("type")).toList()
        + (written.position() == null ? " no position" : " position");
  }

  /** The typed failure: its class, status and, for a conflict or a rejection, what it carries. */
  private static String failure(Future<?> call) throws Exception {
    Throwable failure;
    try {
      call.toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
      return "succeeded";
    } catch (ExecutionException e) {
      failure = e.getCause();
    }
    assertThat(failure).isInstanceOf(KfoldException.class);
    KfoldException typed = (KfoldException) failure;
    String seen = typed.getClass().getSimpleName() + " " + typed.status();
    if (typed instanceof VersionConflictException conflict) {
      seen += " currentVersion " + conflict.currentVersion();
    } else if (typed instanceof CommandRejectedException rejected) {
      seen += " reason " + rejected.reason();
    } else {
      seen += " " + typed.getMessage();
    }
    return seen;
  }

  private static <T> T await(Future<T> future) throws Exception {
    return future.await(30, TimeUnit.SECONDS);
  }
}
