package io.kfold.command;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.config.NodeConfig;
import io.kfold.OpenApiContract;
import io.kfold.RunningNode;
import io.kfold.TestBroker;
import io.kfold.TestLog;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.kfold.types.Envelopes;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.ext.web.client.WebClient;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

@ExtendWith(TestBroker.class)
class CommandsApiTest {

  static final String PLACE = "{\"type\":\"place\",\"payload\":{\"customerEmail\":\"ada@example.com\","
      + "\"items\":[{\"sku\":\"book\",\"quantity\":2,\"price\":12.5}]}}";

  private static RunningNode running;
  private static NodeConfig config;
  private static WebClient client;
  private static Vertx vertx;

  @BeforeAll
  static void start() throws Exception {
    running = RunningNode.start("commands");
    config = running.config;
    client = running.client;
    vertx = running.vertx;
  }

  @AfterAll
  static void stop() throws Exception {
    running.close();
  }

  private static Reply command(String order, String body, Map<String, String> headers) throws Exception {
    return running.call(HttpMethod.POST, "/v1/orders/" + order + "/commands", body, headers);
  }

  private static Reply get(String path) throws Exception {
    return running.get(path);
  }

  @Test
  @DisplayName("place, pay and ship an order: each answer has the new version as ETag and the events it appended")
  void orderLifecycle() throws Exception {
    Reply placed = command("o-life", PLACE, Map.of());
    assertThat(placed.status()).isEqualTo(200);
    assertThat(placed.etag()).isEqualTo("\"1\"");
    assertThat(placed.body().path("events").get(0).path("type").asText()).isEqualTo("OrderPlaced");
    assertThat(placed.body().path("events").get(0).path("payload").path("total").decimalValue()).isEqualByComparingTo("25");

    Reply paid = command("o-life", "{\"type\":\"pay\",\"payload\":{\"amount\":25}}", Map.of("If-Match", "\"1\""));
    assertThat(paid.status()).isEqualTo(200);
    assertThat(paid.body().path("version").asLong()).isEqualTo(2);
    Reply shipped = command("o-life", "{\"type\":\"ship\"}", Map.of());
    assertThat(shipped.status()).isEqualTo(200);

    Reply state = get("/v1/orders/o-life?minVersion=3&timeoutMs=5000");
    assertThat(state.body().path("state").path("status").asText()).isEqualTo("shipped");
    assertThat(TestLog.events(config.eventsTopic("orders"), "o-life")).hasSize(3);
  }

  @Test
  @DisplayName("a rejected command answers 422 with the domain's reason and appends nothing")
  void rejectedCommand() throws Exception {
    command("o-rej", PLACE, Map.of());
    Reply rejected = command("o-rej", "{\"type\":\"ship\",\"payload\":{}}", Map.of());
    assertThat(rejected.status()).isEqualTo(422);
    assertThat(rejected.contentType()).isEqualTo("application/problem+json");
    assertThat(rejected.body().path("detail").asText()).isEqualTo("an unpaid order cannot be shipped");
    Reply wrongAmount = command("o-rej", "{\"type\":\"pay\",\"payload\":{\"amount\":3}}", Map.of());
    assertThat(wrongAmount.status()).isEqualTo(422);
    assertThat(TestLog.events(config.eventsTopic("orders"), "o-rej")).hasSize(1);
  }

  @Test
  @DisplayName("bad commands get 400 with what was wrong, and append nothing")
  void badCommands() throws Exception {
    command("o-bad", PLACE, Map.of());
    assertProblem(command("o-bad", "{\"type\":\"refund\"}", Map.of()), 400, "unknown command 'refund'");
    assertProblem(command("o-bad", "{\"payload\":{}}", Map.of()), 400, "type is missing");
    assertProblem(command("o-bad", "{\"type\":\"pay\",\"payload\":[]}", Map.of()), 400, "payload must be a JSON object");
    assertProblem(command("o-bad", "{\"type\":\"pay\",\"payload\":{\"amount\":\"ten\"}}", Map.of()), 400, "amount must be a number");
    assertProblem(command("o-bad", "{\"type\":\"pay\",\"payload\":{\"amount\":25}}", Map.of("If-Match", "v1")), 400, "If-Match");
    assertProblem(command("o-bad", "{\"type\":\"pay\",\"payload\":{\"amount\":25}}", Map.of("Idempotency-Key", "")), 400,
        "Idempotency-Key");
    assertProblem(command("o%20bad", PLACE, Map.of()), 400, "entity id");
    assertProblem(command("o-bad", "{\"type\":", Map.of()), 400, "not valid JSON");
    assertProblem(command("o-bad", "{\"type\":\"pay\",\"payload\":{\"amount\":25}}", Map.of("If-Match", "\"7\"")), 409, "not 7");
    assertThat(TestLog.events(config.eventsTopic("orders"), "o-bad")).hasSize(1);
  }

  @Test
  @DisplayName("a command retried with the same Idempotency-Key gets the first answer and appends once, also after a restart")
  void idempotencyKey() throws Exception {
    Map<String, String> key = Map.of("Idempotency-Key", "place-o-idem-1");
    Reply first = command("o-idem", PLACE, key);
    Reply retry = command("o-idem", PLACE, key);
    assertThat(first.status()).isEqualTo(200);
    assertThat(retry.status()).isEqualTo(200);
    assertThat(retry.body()).isEqualTo(first.body());
    Reply appendRetry = TestNodes.call(client, HttpMethod.POST, running.node().httpPort(), "/v1/orders/o-idem/events",
        "{\"events\":[{\"type\":\"OrderCommented\",\"payload\":{\"text\":\"hi\"}}]}", Map.of("Idempotency-Key", "note-1"));
    assertThat(appendRetry.status()).isEqualTo(200);

    running.restart();

    Reply afterRestart = command("o-idem", PLACE, key);
    assertThat(afterRestart.status()).isEqualTo(200);
    assertThat(afterRestart.body()).isEqualTo(first.body());
    Reply appendAfterRestart = TestNodes.call(client, HttpMethod.POST, running.node().httpPort(), "/v1/orders/o-idem/events",
        "{\"events\":[{\"type\":\"OrderCommented\",\"payload\":{\"text\":\"hi\"}}]}", Map.of("Idempotency-Key", "note-1"));
    assertThat(appendAfterRestart.body()).isEqualTo(appendRetry.body());
    // Without the key, the same command is a new command: the domain refuses a second place.
    assertThat(command("o-idem", PLACE, Map.of()).status()).isEqualTo(422);
    assertThat(TestLog.events(config.eventsTopic("orders"), "o-idem")).hasSize(2);
  }

  @Test
  @DisplayName("read your writes: a GET with the version a command returned never sees an older state")
  void readYourWrites() throws Exception {
    command("o-ryw", PLACE, Map.of());
    for (int i = 0; i < 30; i++) {
      Reply written = command("o-ryw", "{\"type\":\"comment\",\"payload\":{\"text\":\"note " + i + "\"}}", Map.of());
      long version = written.body().path("version").asLong();
      Reply read = get("/v1/orders/o-ryw?minVersion=" + version + "&timeoutMs=5000");
      assertThat(read.body().path("version").asLong()).isGreaterThanOrEqualTo(version);
      assertThat(read.body().path("state").path("comments")).hasSize(i + 1);
    }
  }

  @Test
  @DisplayName("the change stream opens with the state, then delivers every change in order, with its state")
  void serverSentEvents() throws Exception {
    command("o-sse", PLACE, Map.of());
    HttpClient http = vertx.createHttpClient();
    List<String> frames = new CopyOnWriteArrayList<>();
    HttpClientResponse response = TestNodes.openStream(http, new RequestOptions().setMethod(HttpMethod.GET)
        .setPort(running.node().httpPort()).setHost("127.0.0.1").setURI("/v1/orders/o-sse/changes"), frames)
        .await(10, TimeUnit.SECONDS);
    assertThat(response.statusCode()).isEqualTo(200);
    assertThat(response.getHeader("content-type")).isEqualTo("text/event-stream");
    long deadline = System.currentTimeMillis() + 10_000;
    while (frames.isEmpty() && System.currentTimeMillis() < deadline) {
      Thread.sleep(20);
    }
    for (int i = 0; i < 20; i++) {
      assertThat(command("o-sse", "{\"type\":\"comment\",\"payload\":{\"text\":\"c" + i + "\"}}", Map.of()).status()).isEqualTo(200);
    }
    command("o-sse", "{\"type\":\"pay\",\"payload\":{\"amount\":25}}", Map.of());
    while (frames.size() < 22 && System.currentTimeMillis() < deadline + 20_000) {
      Thread.sleep(20);
    }
    http.close();
    assertThat(frames).hasSize(22);
    assertThat(frames.get(0)).startsWith("event: state\nid: 1\ndata: ");
    for (int i = 1; i < frames.size(); i++) {
      String[] lines = frames.get(i).split("\n");
      assertThat(lines[0]).isEqualTo("event: change");
      assertThat(lines[1]).isEqualTo("id: " + (i + 1));
      JsonNode change = Envelopes.parse(Buffer.buffer(lines[2].substring("data: ".length())).getBytes());
      assertThat(change.path("id").asText()).isEqualTo("o-sse:" + (i + 1));
      assertThat(change.path("event").path("version").asLong()).isEqualTo(i + 1);
      assertThat(change.path("state").path("comments").size()).isEqualTo(Math.min(i, 20));
    }
    assertThat(frames.get(21)).contains("\"status\":\"paid\"");
  }

  @Test
  @DisplayName("the OpenAPI description lists exactly the routes the service serves, and real answers validate against its schemas")
  void openApiIsTrue() throws Exception {
    var response = client.get(running.node().httpPort(), "127.0.0.1", "/openapi.yaml").send().await(10, TimeUnit.SECONDS);
    assertThat(response.statusCode()).isEqualTo(200);
    OpenApiContract api = OpenApiContract.parse(response.bodyAsString());
    Set<String> documented = new HashSet<>();
    for (Iterator<Map.Entry<String, JsonNode>> paths = api.paths(); paths.hasNext(); ) {
      Map.Entry<String, JsonNode> path = paths.next();
      path.getValue().fieldNames().forEachRemaining(method ->
          documented.add(method.toUpperCase() + " " + path.getKey().replaceAll("\\{(\\w+)}", ":$1")));
    }
    assertThat(documented).containsExactlyInAnyOrderElementsOf(running.node().httpRoutes());

    // The validation itself can fail: a body without a required field, or with one of the wrong type.
    assertThatThrownBy(() -> api.assertSchema("State", Envelopes.parse("{\"key\":\"k\",\"version\":1}".getBytes())))
        .hasMessageContaining("state");
    assertThatThrownBy(() -> api.assertSchema("State",
        Envelopes.parse("{\"key\":\"k\",\"version\":\"one\",\"state\":{}}".getBytes()))).hasMessageContaining("version");
    assertThatThrownBy(() -> api.assertSchema("Nothing", null)).hasMessageContaining("no schema Nothing");

    // Every kind of answer the entity routes give, checked against its operation's schema.
    String commands = "/v1/{type}/{id}/commands";
    String events = "/v1/{type}/{id}/events";
    String entity = "/v1/{type}/{id}";
    api.assertAnswer("POST", commands, command("o-api", PLACE, Map.of()));
    api.assertAnswer("POST", commands, command("o-api", "{\"type\":\"comment\",\"payload\":{\"text\":\"x\"}}", Map.of()));
    api.assertAnswer("POST", commands, command("o-api", "{\"type\":", Map.of()));
    api.assertAnswer("POST", commands, running.call(HttpMethod.POST, "/v1/nope/o-api/commands", PLACE, Map.of()));
    api.assertAnswer("POST", commands, command("o-api", "{\"type\":\"comment\",\"payload\":{\"text\":\"x\"}}",
        Map.of("If-Match", "\"1\"")));
    api.assertAnswer("POST", commands, command("o-api", "{\"type\":\"ship\"}", Map.of()));
    api.assertAnswer("POST", events, running.call(HttpMethod.POST, "/v1/orders/o-api/events",
        "{\"events\":[{\"type\":\"OrderCommented\",\"payload\":{\"text\":\"y\"}}]}", Map.of()));
    api.assertAnswer("POST", events, running.call(HttpMethod.POST, "/v1/orders/o-api/events", "{\"events\":[]}", Map.of()));
    Reply history = get("/v1/orders/o-api/events");
    assertThat(history.body().path("events")).hasSize(3);
    api.assertAnswer("GET", events, history);
    api.assertAnswer("GET", events, get("/v1/orders/o-api/events?limit=0"));
    api.assertAnswer("GET", entity, get("/v1/orders/o-api"));
    api.assertAnswer("GET", entity, get("/v1/orders/nope"));
    api.assertAnswer("GET", entity, get("/v1/orders/o-api?minVersion=9&timeoutMs=1"));
    api.assertAnswer("GET", "/v1/_cluster", get("/v1/_cluster"));
    Reply effects = get("/v1/_effects");
    assertThat(effects.body().path("workers").size()).as("workers of the default configuration").isPositive();
    api.assertAnswer("GET", "/v1/_effects", effects);
    api.assertAnswer("GET", "/v1/_effects/{worker}/parked", get("/v1/_effects/nope/parked"));
    api.assertAnswer("GET", "/health", get("/health"));
    api.assertAnswer("GET", "/ready", get("/ready"));
  }

  private static void assertProblem(Reply reply, int status, String detail) {
    assertThat(reply.status()).as(String.valueOf(reply.body())).isEqualTo(status);
    assertThat(reply.contentType()).isEqualTo("application/problem+json");
    assertThat(reply.body().path("detail").asText()).contains(detail);
  }

}
