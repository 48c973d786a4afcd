package io.kfold.http;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.config.NodeConfig;
import io.kfold.RunningNode;
import io.kfold.TestBroker;
import io.kfold.TestLog;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.PoolOptions;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import io.vertx.ext.web.client.WebClientOptions;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

@ExtendWith(TestBroker.class)
class HttpApiTest {

  private static final String APPEND_ONE = "{\"events\":[{\"type\":\"Registered\",\"payload\":{\"name\":\"Ada\"}}]}";

  private static RunningNode running;
  private static NodeConfig config;
  private static WebClient client;

  @BeforeAll
  static void start() throws Exception {
    running = RunningNode.start("http");
    config = running.config;
    client = running.client;
  }

  @AfterAll
  static void stop() throws Exception {
    running.close();
  }

  private static Reply call(HttpMethod method, String path, String body, Map<String, String> headers) throws Exception {
    return running.call(method, path, body, headers);
  }

  private static Reply get(String path) throws Exception {
    return running.get(path);
  }

  /** The body of a GET as the node sent it, unparsed. */
  private static String rawGet(String path) throws Exception {
    HttpResponse<Buffer> response = client.get(running.node().httpPort(), "127.0.0.1", path).send()
        .await(30, TimeUnit.SECONDS);
    assertThat(response.statusCode()).as(path + ": " + response.bodyAsString()).isEqualTo(200);
    return response.bodyAsString();
  }

  /** The records of entity {@code key} in the users' dead-letter topic, once there is one (10 s at most). */
  private static List<ConsumerRecord<byte[], byte[]>> deadLetters(String key) throws InterruptedException {
    long deadline = System.currentTimeMillis() + 10_000;
    while (true) {
      List<ConsumerRecord<byte[], byte[]>> letters = TestLog.records(config.deadLetterTopic("users")).stream()
          .filter(r -> r.key() != null && new String(r.key(), StandardCharsets.UTF_8).equals(key))
          .toList();
      if (!letters.isEmpty() || System.currentTimeMillis() > deadline) {
        return letters;
      }
      Thread.sleep(100);
    }
  }

  private static Reply append(String id, String body, Map<String, String> headers) throws Exception {
    return call(HttpMethod.POST, "/v1/users/" + id + "/events", body, headers);
  }

  @Test
  @DisplayName("appended events come back as the state, with its version as ETag, and as the history")
  void appendThenRead() throws Exception {
    Reply appended = append("ada", "{\"events\":[{\"type\":\"Registered\",\"payload\":{\"name\":\"Ada\",\"city\":\"London\"}},"
        + "{\"type\":\"Moved\",\"payload\":{\"city\":null,\"country\":\"UK\"}}]}", Map.of());
    assertThat(appended.status()).isEqualTo(200);
    assertThat(appended.etag()).isEqualTo("\"2\"");
    assertThat(appended.body().path("version").asLong()).isEqualTo(2);
    assertThat(appended.body().path("events")).hasSize(2);
    JsonNode first = appended.body().path("events").get(0);
    assertThat(first.path("id").asText()).isNotBlank();
    assertThat(first.path("entity").asText()).isEqualTo("users");
    assertThat(first.path("key").asText()).isEqualTo("ada");
    assertThat(first.path("version").asLong()).isEqualTo(1);
    assertThat(first.path("time").asText()).isNotBlank();
    assertThat(first.path("meta").path("commandId").asText()).isNotBlank();
    assertThat(first.path("meta").path("correlationId").asText()).isNotBlank();

    Reply state = get("/v1/users/ada");
    assertThat(state.status()).isEqualTo(200);
    assertThat(state.etag()).isEqualTo("\"2\"");
    assertThat(state.body().path("version").asLong()).isEqualTo(2);
    assertThat(state.body().path("state").toString()).isEqualTo("{\"name\":\"Ada\",\"country\":\"UK\"}");

    Reply history = get("/v1/users/ada/events");
    assertThat(history.status()).isEqualTo(200);
    assertThat(history.body().path("events")).hasSize(2);
    assertThat(history.body().path("events").get(1).path("type").asText()).isEqualTo("Moved");
    Reply page = get("/v1/users/ada/events?fromVersion=2&limit=1");
    assertThat(page.body().path("events")).hasSize(1);
    assertThat(page.body().path("events").get(0).path("version").asLong()).isEqualTo(2);
  }

  /** Numbers as sent, and as kfold must answer them: the same value, at the same scale. */
  private static final Map<String, String> EXACT_NUMBERS = Map.of(
      "tenth", "0.1",
      "scaled", "12.50",
      "whole", "25",
      "long", "9223372036854775807",
      "big", "12345678901234567890123456789",
      "precise", "0.10000000000000000000000001",
      "huge", "1E+400",
      "tiny", "1E-400",
      "negative", "-7.25");

  @Test
  @DisplayName("numbers in a payload are kept exactly: big, precise, beyond a double, in the write's answer, the state and the history")
  void numbersAreKeptExactly() throws Exception {
    StringBuilder payload = new StringBuilder("{");
    EXACT_NUMBERS.forEach((name, number) -> payload.append(payload.length() > 1 ? "," : "").append('"').append(name)
        .append("\":").append(name.equals("huge") ? "1e400" : name.equals("tiny") ? "1e-400" : number));
    payload.append('}');
    HttpResponse<Buffer> appended = client.post(running.node().httpPort(), "127.0.0.1", "/v1/users/measured/events")
        .sendBuffer(Buffer.buffer("{\"events\":[{\"type\":\"Measured\",\"payload\":" + payload + "}]}"))
        .await(30, TimeUnit.SECONDS);
    assertThat(appended.statusCode()).as(appended.bodyAsString()).isEqualTo(200);
    String state = rawGet("/v1/users/measured?minVersion=1&timeoutMs=5000");
    String history = rawGet("/v1/users/measured/events");
    // The answers are compared as text: a number that went through a double on the way would
    // come back rounded, or as "Infinity".
    EXACT_NUMBERS.forEach((name, number) -> {
      String member = '"' + name + "\":" + number;
      assertThat(appended.bodyAsString()).as("the write's answer").contains(member);
      assertThat(state).as("the state").contains(member);
      assertThat(history).as("the history").contains(member);
    });
  }

  @Test
  @DisplayName("a payload with a number kfold cannot keep exactly gets 400 naming it, and appends nothing")
  void numberThatCannotBeKept() throws Exception {
    Reply refused = append("overflow", "{\"events\":[{\"type\":\"Measured\",\"payload\":{\"reading\":1e9999999999}}]}",
        Map.of());
    assertProblem(refused, 400, "1e9999999999");
    assertThat(refused.body().path("detail").asText()).contains("cannot be kept exactly");
    assertThat(get("/v1/users/overflow").status()).isEqualTo(404);
    assertThat(recordsInLog("overflow")).isZero();
  }

  @Test
  @DisplayName("an outside record with a number kfold cannot keep exactly is dead-lettered, and the fold goes on")
  void outsideNumberThatCannotBeKept() throws Exception {
    try (KafkaProducer<byte[], byte[]> producer = TestNodes.plainProducer()) {
      producer.send(new ProducerRecord<>(config.eventsTopic("users"), "far-out".getBytes(StandardCharsets.UTF_8),
          "{\"reading\":1e9999999999}".getBytes(StandardCharsets.UTF_8))).get();
      producer.send(new ProducerRecord<>(config.eventsTopic("users"), "far-out".getBytes(StandardCharsets.UTF_8),
          "{\"reading\":1e400}".getBytes(StandardCharsets.UTF_8))).get();
    }
    assertThat(rawGet("/v1/users/far-out?minVersion=1&timeoutMs=10000")).contains("\"reading\":1E+400");
    List<ConsumerRecord<byte[], byte[]>> dead = deadLetters("far-out");
    assertThat(dead).hasSize(1);
    assertThat(header(dead.get(0), "kfold.error")).contains("1e9999999999").contains("cannot be kept exactly");
  }

  @Test
  @DisplayName("a correlation id given by the caller is carried in every event's meta")
  void correlationId() throws Exception {
    Reply appended = append("corr", APPEND_ONE, Map.of("X-Correlation-Id", "order-flow-7"));
    assertThat(appended.body().path("events").get(0).path("meta").path("correlationId").asText()).isEqualTo("order-flow-7");
  }

  @Test
  @DisplayName("If-Match with the current version appends; with another version answers 409 and appends nothing")
  void ifMatch() throws Exception {
    assertThat(append("grace", APPEND_ONE, Map.of("If-Match", "\"0\"")).status()).isEqualTo(200);
    Reply conflict = append("grace", APPEND_ONE, Map.of("If-Match", "\"0\""));
    assertThat(conflict.status()).isEqualTo(409);
    assertThat(conflict.contentType()).isEqualTo("application/problem+json");
    assertThat(conflict.body().path("currentVersion").asLong()).isEqualTo(1);
    assertThat(recordsInLog("grace")).as("the refused append wrote nothing").isEqualTo(1);
    assertThat(append("grace", APPEND_ONE, Map.of("If-Match", "\"1\"")).status()).isEqualTo(200);
    assertThat(get("/v1/users/grace").body().path("version").asLong()).isEqualTo(2);
    // Counted again after a later append, which is written after anything the 409 might have left.
    assertThat(recordsInLog("grace")).isEqualTo(2);
  }

  @Test
  @DisplayName("50 concurrent appends with the same If-Match: exactly one succeeds, 49 get 409, the log holds one event")
  void concurrentAppendsWithSameIfMatch() throws Exception {
    List<Future<HttpResponse<Buffer>>> replies = new ArrayList<>();
    for (int i = 0; i < 50; i++) {
      replies.add(client.post(running.node().httpPort(), "127.0.0.1", "/v1/users/race/events")
          .putHeader("If-Match", "\"0\"")
          .sendBuffer(Buffer.buffer("{\"events\":[{\"type\":\"Claimed\",\"payload\":{\"by\":" + i + "}}]}")));
    }
    Future.join(replies).await(60, TimeUnit.SECONDS);
    Map<Integer, Integer> byStatus = new HashMap<>();
    replies.forEach(r -> byStatus.merge(r.result().statusCode(), 1, Integer::sum));
    assertThat(byStatus).isEqualTo(Map.of(200, 1, 409, 49));
    assertThat(get("/v1/users/race").body().path("version").asLong()).isEqualTo(1);
    assertThat(recordsInLog("race")).isEqualTo(1);
  }

  @Test
  @DisplayName("reads asked together each get their own entity's state, or 404 for an entity without one")
  void concurrentReadsOfManyEntities() throws Exception {
    for (int i = 0; i < 40; i++) {
      assertThat(append("reader-" + i, "{\"events\":[{\"type\":\"Registered\",\"payload\":{\"n\":" + i + "}}]}",
          Map.of()).status()).isEqualTo(200);
    }
    // Many connections at once, so that one round of the server's event loop reads several entities
    // in one multi-get, and each answer must still be its own entity's.
    WebClient many = WebClient.create(running.vertx, new WebClientOptions(), new PoolOptions().setHttp1MaxSize(64));
    try {
      Map<String, Future<HttpResponse<Buffer>>> replies = new HashMap<>();
      for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 60; i++) {
          String id = (i < 40 ? "reader-" : "nobody-") + i;
          replies.put(id + "#" + round, many.get(running.node().httpPort(), "127.0.0.1", "/v1/users/" + id).send());
        }
      }
      Future.join(new ArrayList<>(replies.values())).await(60, TimeUnit.SECONDS);
      replies.forEach((request, reply) -> {
        String id = request.substring(0, request.indexOf('#'));
        if (id.startsWith("reader-")) {
          assertThat(reply.result().statusCode()).as(request).isEqualTo(200);
          assertThat(reply.result().bodyAsJsonObject().getString("key")).as(request).isEqualTo(id);
          assertThat(reply.result().bodyAsJsonObject().getJsonObject("state").getInteger("n"))
              .as(request).isEqualTo(Integer.parseInt(id.substring("reader-".length())));
        } else {
          assertThat(reply.result().statusCode()).as(request).isEqualTo(404);
        }
      });
    } finally {
      many.close();
    }
  }

  @Test
  @DisplayName("a read with minVersion waits for the fold, and answers 504 when the version never comes")
  void readYourWrites() throws Exception {
    Future<HttpResponse<Buffer>> waiting = client.get(running.node().httpPort(), "127.0.0.1", "/v1/users/later?minVersion=1&timeoutMs=10000").send();
    assertThat(append("later", APPEND_ONE, Map.of()).status()).isEqualTo(200);
    HttpResponse<Buffer> reply = waiting.await(15, TimeUnit.SECONDS);
    assertThat(reply.statusCode()).isEqualTo(200);
    assertThat(reply.bodyAsJsonObject().getLong("version")).isEqualTo(1L);

    Reply timeout = get("/v1/users/later?minVersion=5&timeoutMs=200");
    assertThat(timeout.status()).isEqualTo(504);
    assertThat(timeout.body().path("detail").asText()).contains("version 5");
  }

  @Test
  @DisplayName("events written by an outside producer without a version are folded as the next versions")
  void outsideProducer() throws Exception {
    try (KafkaProducer<byte[], byte[]> producer = TestNodes.plainProducer()) {
      for (int i = 1; i <= 3; i++) {
        producer.send(new ProducerRecord<>(config.eventsTopic("users"), "outside".getBytes(StandardCharsets.UTF_8),
            ("{\"step\":" + i + "}").getBytes(StandardCharsets.UTF_8)));
      }
    }
    Reply state = get("/v1/users/outside?minVersion=3&timeoutMs=10000");
    assertThat(state.status()).isEqualTo(200);
    assertThat(state.body().path("version").asLong()).isEqualTo(3);
    assertThat(state.body().path("state").path("step").asInt()).isEqualTo(3);
    JsonNode events = get("/v1/users/outside/events").body().path("events");
    assertThat(events).hasSize(3);
    for (int i = 0; i < 3; i++) {
      assertThat(events.get(i).path("version").asLong()).isEqualTo(i + 1);
      assertThat(events.get(i).path("payload").path("step").asInt()).isEqualTo(i + 1);
    }
  }

  @Test
  @DisplayName("an undecodable record goes to the dead-letter topic with its partition and offset, and the fold goes on")
  void deadLetter() throws Exception {
    var metadata = TestNodes.plainProducer();
    try (metadata) {
      metadata.send(new ProducerRecord<>(config.eventsTopic("users"), "poison".getBytes(StandardCharsets.UTF_8),
          "not json {".getBytes(StandardCharsets.UTF_8))).get();
      metadata.send(new ProducerRecord<>(config.eventsTopic("users"), "poison".getBytes(StandardCharsets.UTF_8),
          "{\"ok\":true}".getBytes(StandardCharsets.UTF_8))).get();
    }
    Reply state = get("/v1/users/poison?minVersion=1&timeoutMs=10000");
    assertThat(state.status()).isEqualTo(200);
    assertThat(state.body().path("state").path("ok").asBoolean()).isTrue();

    List<ConsumerRecord<byte[], byte[]>> dead = deadLetters("poison");
    assertThat(dead).hasSize(1);
    ConsumerRecord<byte[], byte[]> letter = dead.get(0);
    assertThat(new String(letter.value(), StandardCharsets.UTF_8)).isEqualTo("not json {");
    assertThat(header(letter, "kfold.source.topic")).isEqualTo(config.eventsTopic("users"));
    assertThat(header(letter, "kfold.source.partition")).matches("[0-3]");
    assertThat(header(letter, "kfold.source.offset")).matches("[0-9]+");
    assertThat(header(letter, "kfold.error")).contains("not JSON");
  }

  @Test
  @DisplayName("bad requests get 400/404/413 with a problem body that says what was wrong, and append nothing")
  void badRequests() throws Exception {
    assertProblem(append("bob", "{\"events\": [", Map.of()), 400, "not valid JSON");
    assertProblem(append("bob", "", Map.of()), 400, "no body");
    assertProblem(append("bob", "{\"events\": []}", Map.of()), 400, "at least one event");
    assertProblem(append("bob", "{\"events\": [{\"payload\": {}}]}", Map.of()), 400, "events[0].type");
    assertProblem(append("bob", "{\"events\": [{\"type\": \"X\", \"payload\": 3}]}", Map.of()), 400, "events[0].payload");
    assertProblem(append("bob", APPEND_ONE, Map.of("If-Match", "yesterday")), 400, "If-Match");
    assertProblem(append("bad$id", APPEND_ONE, Map.of()), 400, "entity id");
    assertProblem(append("x".repeat(129), APPEND_ONE, Map.of()), 400, "entity id");
    assertProblem(call(HttpMethod.POST, "/v1/ghosts/bob/events", APPEND_ONE, Map.of()), 404, "unknown entity type 'ghosts'");
    String huge = "{\"events\":[{\"type\":\"Big\",\"payload\":{\"blob\":\"" + "x".repeat(config.http().maxBodyBytes()) + "\"}}]}";
    assertProblem(append("bob", huge, Map.of()), 413, "over the limit");
    assertProblem(get("/v1/users/bob"), 404, "no users 'bob'");
    assertProblem(get("/v1/users/bob/events"), 404, "no users 'bob'");
    assertProblem(get("/v1/users/bob?minVersion=abc"), 400, "minVersion");
    assertProblem(get("/v2/nothing"), 404, "Not Found");
    assertThat(recordsInLog("bob")).isZero();
  }

  @Test
  @DisplayName("health, readiness and metrics answer")
  void operations() throws Exception {
    assertThat(get("/health").status()).isEqualTo(200);
    Reply ready = get("/ready");
    assertThat(ready.status()).isEqualTo(200);
    assertThat(ready.body().path("broker").asText()).isEqualTo("reachable");
    var metrics = client.get(running.node().httpPort(), "127.0.0.1", "/metrics").send().await(10, TimeUnit.SECONDS);
    assertThat(metrics.bodyAsString()).contains("kfold_fold_events_applied_total");
  }

  private static void assertProblem(Reply reply, int status, String detail) {
    assertThat(reply.status()).as(reply.toString()).isEqualTo(status);
    assertThat(reply.contentType()).isEqualTo("application/problem+json");
    assertThat(reply.body().path("status").asInt()).isEqualTo(status);
    assertThat(reply.body().path("title").asText()).isNotBlank();
    assertThat(reply.body().path("detail").asText()).contains(detail);
  }

  private static String header(ConsumerRecord<byte[], byte[]> record, String name) {
    return new String(record.headers().lastHeader(name).value(), StandardCharsets.UTF_8);
  }

  /** Counts the records of one entity in the events topic: the log itself, not the answers. */
  private static long recordsInLog(String key) {
    return TestLog.events(config.eventsTopic("users"), key).size();
  }
}
