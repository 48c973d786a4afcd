package io.kfold.auth;

import io.kfold.Await;
import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.kfold.cluster.Forwarder;
import io.kfold.cluster.Ownership;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.client.WebClient;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.file.Path;
import java.time.Clock;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;

import static io.kfold.auth.HttpAuthTest.bearer;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Two nodes in mode api-keys: a request for an entity the other node folds is checked on the node
 * asked and again on the node that folds it, as the caller's; the nodes' own requests (event bus,
 * query fan-out) pass by their proofs; a request that claims to be forwarded without a proof is
 * refused.
 */
@ExtendWith(TestBroker.class)
class ForwardingAuthTest {

  private static final String RENAME = "{\"type\":\"Renamed\",\"payload\":{\"name\":\"Ada\",\"email\":\"fwd@kfold.test\"}}";
  private static final String APPEND = "{\"events\":[{\"type\":\"Registered\",\"payload\":{\"name\":\"Ada\"}}]}";

  @Test
  @DisplayName("forwarding keeps the caller's identity: a reader cannot write through the node that does not fold"
      + " the entity, a writer can and is recorded as the principal; nodes' own requests pass by their proofs; a"
      + " forwarded mark without a proof is refused and appends nothing")
  void forwardingKeepsTheIdentity() throws Exception {
    String app = TestNodes.newApp("fwd-auth");
    NodeConfig first = config(app, "fwd-auth-a");
    NodeConfig second = config(app, "fwd-auth-b");
    Vertx vertxA = Vertx.vertx();
    Vertx vertxB = Vertx.vertx();
    NodeRuntime a = NodeRuntime.start(vertxA, first).await(60, TimeUnit.SECONDS);
    NodeRuntime b = NodeRuntime.start(vertxB, second).await(60, TimeUnit.SECONDS);
    WebClient client = WebClient.create(vertxA);
    HttpClient http = vertxA.createHttpClient();
    try {
      Await.until("the two nodes share the partitions and know it", () -> TestNodes.splitAndKnown(a, b,
          node -> call(client, node, HttpMethod.GET, "/v1/_cluster", null, bearer("admin")).body()));
      Ownership ofA = new Ownership(first, Map.of("users", 4), a.progress());
      String[] ofB = IntStream.range(0, 100).mapToObj(i -> "f" + i).filter(key -> !ofA.owns("users", key))
          .limit(3).toArray(String[]::new);
      String entity = ofB[0];
      String guarded = ofB[1];
      String nameOfB = call(client, b, HttpMethod.GET, "/v1/_cluster", null, bearer("admin")).body().path("node").asText();
      assertThat(call(client, a, HttpMethod.POST, "/v1/users/" + guarded + "/events", APPEND, bearer("appender"))
          .status()).isEqualTo(200);

      Reply byReader = call(client, a, HttpMethod.POST, "/v1/users/" + guarded + "/commands", RENAME, bearer("reader"));
      assertThat(byReader.status()).as("a reader's command through A: " + byReader.body()).isEqualTo(403);
      Reply byWriter = call(client, a, HttpMethod.POST, "/v1/users/" + entity + "/commands", RENAME, bearer("writer"));
      assertThat(byWriter.status()).as("a writer's command through A: " + byWriter.body()).isEqualTo(200);
      assertThat(byWriter.header(Forwarder.ANSWERED_BY)).as("decided by B, which folds it").isEqualTo(nameOfB);
      JsonNode events = call(client, a, HttpMethod.GET, "/v1/users/" + entity + "/events", null, bearer("reader"))
          .body().path("events");
      assertThat(events.get(0).path("meta").path("principal").asText())
          .as("the caller, not the node that forwarded").isEqualTo("writer");

      // B checks a forwarded request as its caller's: a node's valid proof lends the reader no write.
      NodeProof proof = new NodeProof(HttpAuthTest.SECRET, Clock.systemUTC());
      String uri = "/v1/users/" + guarded + "/commands";
      Map<String, String> provedReader = new HashMap<>(bearer("reader"));
      provedReader.put(Forwarder.FORWARDED_BY, "node-x");
      provedReader.put(NodeProof.HEADER, proof.sign("node-x", "POST", uri));
      assertThat(call(client, b, HttpMethod.POST, uri, RENAME, provedReader).status()).isEqualTo(403);
      Map<String, String> unproved = new HashMap<>(bearer("appender"));
      unproved.put(Forwarder.FORWARDED_BY, "node-x");
      Reply forged = call(client, b, HttpMethod.POST, "/v1/users/" + guarded + "/events", APPEND, unproved);
      assertThat(forged.status()).as(forged.body().toString()).isEqualTo(401);

      // The nodes' own requests: an event-bus command for B's entity, a query over both nodes' partitions,
      // a change stream relayed with the caller's key.
      JsonObject busWritten = vertxA.eventBus().<JsonObject>request("kfold.users.command", new JsonObject()
              .put("key", ofB[2]).put("type", "Renamed").put("payload", new JsonObject().put("name", "Bus")))
          .await(30, TimeUnit.SECONDS).body();
      assertThat(busWritten.getLong("version")).isEqualTo(1L);
      assertThat(call(client, a, HttpMethod.GET, "/v1/users/" + ofB[2] + "/events", null, bearer("reader")).body()
          .path("events").get(0).path("meta").has("principal")).as("a node's own write names no caller").isFalse();
      Reply query = call(client, a, HttpMethod.GET, "/v1/users?email=fwd@kfold.test", null, bearer("reader"));
      assertThat(query.status()).as(query.body().toString()).isEqualTo(200);
      assertThat(query.body().path("items").size()).isEqualTo(1);
      RequestOptions stream = new RequestOptions().setHost("127.0.0.1").setPort(a.httpPort())
          .setURI("/v1/users/" + entity + "/changes").putHeader("Authorization", "Bearer " + HttpAuthTest.key("reader"));
      int streamed = http.request(stream).compose(request -> request.send().map(response -> {
        response.exceptionHandler(e -> { });
        request.reset();
        return response.statusCode() * (response.getHeader(Forwarder.ANSWERED_BY).equals(nameOfB) ? 1 : -1);
      })).await(30, TimeUnit.SECONDS);
      assertThat(streamed).as("B's change stream, relayed by A").isEqualTo(200);

      // Nothing the refused requests asked for was appended: a write that expects version 1 succeeds.
      Map<String, String> sentinel = new HashMap<>(bearer("appender"));
      sentinel.put("If-Match", "\"1\"");
      Reply after = call(client, a, HttpMethod.POST, "/v1/users/" + guarded + "/events", APPEND, sentinel);
      assertThat(after.status()).as(after.body().toString()).isEqualTo(200);
    } finally {
      http.close();
      client.close();
      a.stop().await(60, TimeUnit.SECONDS);
      b.stop().await(60, TimeUnit.SECONDS);
      vertxA.close().await(30, TimeUnit.SECONDS);
      vertxB.close().await(30, TimeUnit.SECONDS);
    }
  }

  private static NodeConfig config(String app, String name) {
    Path dir = TestNodes.tempDir(name);
    return NodeConfig.load(TestNodes.withSection(TestNodes.env(app, dir), dir, "auth",
        HttpAuthTest.apiKeysSection("open")));
  }

  private static Reply call(WebClient client, NodeRuntime node, HttpMethod method, String path, String body,
                            Map<String, String> headers) throws Exception {
    Map<String, String> all = new HashMap<>(headers);
    if (body != null) {
      all.put("content-type", "application/json");
    }
    return TestNodes.call(client, method, node.httpPort(), path, body, all);
  }
}
