package io.kfold;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.types.Envelopes;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import io.vertx.ext.web.client.WebClientOptions;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * 32 clients contend for 10 orders: each reads an order's version, then sends a comment with
 * If-Match, 25 times. What they were answered is then checked against the events topic itself, not
 * against what a node says, whether one node served them or several.
 */
public final class ContendedOrders implements AutoCloseable {

  public static final int CLIENTS = 32;
  public static final int ORDERS = 10;
  public static final int COMMANDS_PER_CLIENT = 25;

  private static final String PLACE = "{\"type\":\"place\",\"payload\":{\"customerEmail\":\"ada@example.com\","
      + "\"items\":[{\"sku\":\"book\",\"quantity\":2,\"price\":12.5}]}}";

  /** One answered command: the order, the status, and for a 200 the version and event ids it reported. */
  public record Answer(String order, int status, long version, List<String> eventIds) {}

  private final Vertx vertx;
  private final List<Integer> ports;
  private final WebClient client;

  /**
   * @param ports the HTTP ports of the nodes the clients talk to, in turn: a client's n-th command
   *              reads through one and writes through the next
   */
  public ContendedOrders(Vertx vertx, List<Integer> ports) {
    this.vertx = vertx;
    this.ports = List.copyOf(ports);
    this.client = WebClient.create(vertx, new WebClientOptions(), new PoolOptions().setHttp1MaxSize(CLIENTS));
  }

  public static String order(int i) {
    return "h" + i;
  }

  /** Places the orders, each through the next node in turn. */
  public void place() throws Exception {
    for (int o = 0; o < ORDERS; o++) {
      HttpResponse<Buffer> placed = client.post(ports.get(o % ports.size()), "127.0.0.1", "/v1/orders/" + order(o) + "/commands")
          .sendBuffer(Buffer.buffer(PLACE)).await(30, TimeUnit.SECONDS);
      assertThat(placed.statusCode()).as("place %s: %s", order(o), placed.bodyAsString()).isEqualTo(200);
    }
  }

  /** Runs every client to its last command; answers what each command was answered. */
  public List<Answer> run() throws Exception {
    ConcurrentLinkedQueue<Answer> answers = new ConcurrentLinkedQueue<>();
    List<Future<Void>> clients = new ArrayList<>();
    for (int c = 0; c < CLIENTS; c++) {
      Promise<Void> done = Promise.promise();
      int clientId = c;
      vertx.runOnContext(v -> hammer(clientId, 0, answers, done));
      clients.add(done.future());
    }
    Future.all(clients).await(180, TimeUnit.SECONDS);
    return List.copyOf(answers);
  }

  /** One client: read an order's version, send a comment with If-Match, record the answer, repeat. */
  private void hammer(int clientId, int sent, ConcurrentLinkedQueue<Answer> answers, Promise<Void> done) {
    if (sent == COMMANDS_PER_CLIENT) {
      done.complete();
      return;
    }
    String order = order((clientId + sent) % ORDERS);
    int readPort = ports.get((clientId + sent) % ports.size());
    int writePort = ports.get((clientId + sent + 1) % ports.size());
    client.get(readPort, "127.0.0.1", "/v1/orders/" + order).send()
        .compose(read -> client.post(writePort, "127.0.0.1", "/v1/orders/" + order + "/commands")
            .putHeader("If-Match", read.getHeader("ETag"))
            .sendBuffer(Buffer.buffer("{\"type\":\"comment\",\"payload\":{\"text\":\"client " + clientId + " #" + sent + "\"}}")))
        .onSuccess(reply -> {
          List<String> ids = new ArrayList<>();
          long version = -1;
          if (reply.statusCode() == 200) {
            JsonObject body = reply.bodyAsJsonObject();
            version = body.getLong("version");
            body.getJsonArray("events").forEach(e -> ids.add(((JsonObject) e).getString("id")));
          }
          answers.add(new Answer(order, reply.statusCode(), version, ids));
          hammer(clientId, sent + 1, answers, done);
        })
        .onFailure(done::fail);
  }

  /**
   * Every command was answered 200 or 409; the versions accepted for an order are contiguous after
   * its place and none twice; the log holds the place plus exactly one event per 200 (so a 409
   * appended nothing), in version order, and every event a 200 reported exactly once.
   */
  public static void assertLogAgrees(Collection<Answer> answers, String eventsTopic) {
    assertThat(answers).hasSize(CLIENTS * COMMANDS_PER_CLIENT);
    assertThat(answers).allMatch(a -> a.status() == 200 || a.status() == 409, "only 200 and 409");
    Map<String, List<Answer>> accepted = accepted(answers);
    assertThat(accepted.values().stream().mapToInt(List::size).sum()).as("some commands won").isGreaterThan(ORDERS);

    Map<String, List<JsonNode>> log = new HashMap<>();
    TestLog.records(eventsTopic).forEach(record -> {
      try {
        JsonNode event = Envelopes.parse(record.value());
        log.computeIfAbsent(event.path("key").asText(), k -> new ArrayList<>()).add(event);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    });
    for (int o = 0; o < ORDERS; o++) {
      String order = order(o);
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
  }

  /** The version each order reached by the answers: its place and one per 200. */
  public static Map<String, Long> versionsReached(Collection<Answer> answers) {
    Map<String, List<Answer>> accepted = accepted(answers);
    Map<String, Long> versions = new HashMap<>();
    for (int o = 0; o < ORDERS; o++) {
      versions.put(order(o), 1L + accepted.getOrDefault(order(o), List.of()).size());
    }
    return versions;
  }

  private static Map<String, List<Answer>> accepted(Collection<Answer> answers) {
    Map<String, List<Answer>> accepted = new HashMap<>();
    answers.stream().filter(a -> a.status() == 200)
        .forEach(a -> accepted.computeIfAbsent(a.order(), k -> new ArrayList<>()).add(a));
    return accepted;
  }

  @Override
  public void close() {
    client.close();
  }
}
