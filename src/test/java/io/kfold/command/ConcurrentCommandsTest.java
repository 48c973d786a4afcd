package io.kfold.command;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.KfoldConfig;
import io.kfold.KfoldNode;
import io.kfold.TestBroker;
import io.kfold.TestLog;
import io.kfold.TestNodes;
import io.kfold.entity.Envelopes;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.PoolOptions;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import io.vertx.ext.web.client.WebClientOptions;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * 32 clients hammer 10 orders with commands carrying If-Match, each reading the order's version
 * first. The log itself is checked afterwards, not only the answers.
 */
@ExtendWith(TestBroker.class)
class ConcurrentCommandsTest {

  private static final int CLIENTS = 32;
  private static final int ORDERS = 10;
  private static final int COMMANDS_PER_CLIENT = 25;

  /** One answered command: the order, the status, and for a 200 the version and event ids it reported. */
  private record Answer(String order, int status, long version, List<String> eventIds) {}

  @Test
  @DisplayName("32 clients, 10 orders, If-Match: contiguous versions, no version twice, every 200 in the log once, every 409 appended nothing")
  void hammerTheSameOrders() throws Exception {
    Vertx vertx = Vertx.vertx();
    KfoldConfig config = TestNodes.config(TestNodes.newApp("hammer"), TestNodes.tempDir("hammer"));
    KfoldNode node = TestNodes.startCaughtUp(vertx, config);
    WebClient client = WebClient.create(vertx, new WebClientOptions(), new PoolOptions().setHttp1MaxSize(CLIENTS));
    try {
      for (int o = 0; o < ORDERS; o++) {
        HttpResponse<Buffer> placed = client.post(node.httpPort(), "127.0.0.1", "/v1/orders/h" + o + "/commands")
            .sendBuffer(Buffer.buffer(CommandsApiTest.PLACE)).await(30, TimeUnit.SECONDS);
        assertThat(placed.statusCode()).isEqualTo(200);
      }
      ConcurrentLinkedQueue<Answer> answers = new ConcurrentLinkedQueue<>();
      List<Future<Void>> clients = new ArrayList<>();
      for (int c = 0; c < CLIENTS; c++) {
        Promise<Void> done = Promise.promise();
        int clientId = c;
        vertx.runOnContext(v -> hammer(client, node.httpPort(), clientId, 0, answers, done));
        clients.add(done.future());
      }
      Future.all(clients).await(180, TimeUnit.SECONDS);

      assertThat(answers).hasSize(CLIENTS * COMMANDS_PER_CLIENT);
      assertThat(answers).allMatch(a -> a.status() == 200 || a.status() == 409, "only 200 and 409");
      Map<String, List<Answer>> accepted = new HashMap<>();
      answers.stream().filter(a -> a.status() == 200).forEach(a -> accepted.computeIfAbsent(a.order(), k -> new ArrayList<>()).add(a));
      assertThat(accepted.values().stream().mapToInt(List::size).sum()).as("some commands won").isGreaterThan(ORDERS);

      Map<String, List<JsonNode>> log = new HashMap<>();
      TestLog.records(config.eventsTopic("orders")).forEach(record -> {
        try {
          JsonNode event = Envelopes.parse(record.value());
          log.computeIfAbsent(event.path("key").asText(), k -> new ArrayList<>()).add(event);
        } catch (java.io.IOException e) {
          throw new IllegalStateException(e);
        }
      });
      for (int o = 0; o < ORDERS; o++) {
        String order = "h" + o;
        List<Answer> won = accepted.getOrDefault(order, List.of());
        Set<Long> versions = new HashSet<>();
        won.forEach(a -> assertThat(versions.add(a.version())).as("version %d of %s accepted twice", a.version(), order).isTrue());
        Set<Long> expected = new HashSet<>();
        for (long v = 2; v <= won.size() + 1; v++) {
          expected.add(v);
        }
        assertThat(versions).as("accepted versions of %s are contiguous after the place", order).isEqualTo(expected);

        List<JsonNode> events = log.get(order);
        // The place, plus exactly one event per 200: a 409 appended nothing.
        assertThat(events).as("events of %s in the log", order).hasSize(won.size() + 1);
        Map<String, Integer> idsInLog = new HashMap<>();
        for (int i = 0; i < events.size(); i++) {
          assertThat(events.get(i).path("version").asLong()).as("log version of %s", order).isEqualTo(i + 1);
          idsInLog.merge(events.get(i).path("id").asText(), 1, Integer::sum);
        }
        for (Answer answer : won) {
          for (String id : answer.eventIds()) {
            assertThat(idsInLog.get(id)).as("event %s of a 200 in the log", id).isEqualTo(1);
          }
        }
      }
    } finally {
      client.close();
      node.stop().await(60, TimeUnit.SECONDS);
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  /** One client: read an order's version, send a comment with If-Match, record the answer, repeat. */
  private static void hammer(WebClient client, int port, int clientId, int sent, ConcurrentLinkedQueue<Answer> answers,
                             Promise<Void> done) {
    if (sent == COMMANDS_PER_CLIENT) {
      done.complete();
      return;
    }
    String order = "h" + ((clientId + sent) % ORDERS);
    client.get(port, "127.0.0.1", "/v1/orders/" + order).send()
        .compose(read -> client.post(port, "127.0.0.1", "/v1/orders/" + order + "/commands")
            .putHeader("If-Match", read.getHeader("ETag"))
            .sendBuffer(Buffer.buffer("{\"type\":\"comment\",\"payload\":{\"text\":\"client " + clientId + " #" + sent + "\"}}")))
        .onSuccess(reply -> {
          List<String> ids = new ArrayList<>();
          long version = -1;
          if (reply.statusCode() == 200) {
            var body = reply.bodyAsJsonObject();
            version = body.getLong("version");
            body.getJsonArray("events").forEach(e -> ids.add(((io.vertx.core.json.JsonObject) e).getString("id")));
          }
          answers.add(new Answer(order, reply.statusCode(), version, ids));
          hammer(client, port, clientId, sent + 1, answers, done);
        })
        .onFailure(done::fail);
  }
}
