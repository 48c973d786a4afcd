package io.kfold.cluster;

import io.kfold.Await;
import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.TestBroker;
import io.kfold.TestLog;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.ext.web.client.WebClient;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;

import static org.assertj.core.api.Assertions.assertThat;

/** Two nodes share the partitions; a caller never needs to know which one folds an entity. */
@ExtendWith(TestBroker.class)
class OwnershipTest {

  private static final String PLACE =
      "{\"type\":\"place\",\"payload\":{\"customerEmail\":\"a@b.c\",\"items\":[{\"sku\":\"x\",\"quantity\":1,\"price\":5}]}}";

  @Test
  @DisplayName("with two nodes, either node answers any entity's commands, reads and change stream: the node that folds"
      + " it decides and answers (named in Kfold-Node), the other forwards to it")
  void anyNodeAnswers() throws Exception {
    Vertx vertx = Vertx.vertx();
    String app = TestNodes.newApp("owners");
    NodeConfig first = TestNodes.quickRebalancesConfig(app, TestNodes.tempDir("owner-a"));
    NodeConfig second = TestNodes.quickRebalancesConfig(app, TestNodes.tempDir("owner-b"));
    NodeRuntime a = NodeRuntime.start(vertx, first).await(60, TimeUnit.SECONDS);
    NodeRuntime b = NodeRuntime.start(vertx, second).await(60, TimeUnit.SECONDS);
    WebClient client = WebClient.create(vertx);
    HttpClient http = vertx.createHttpClient();
    try {
      Await.until("two nodes share the partitions and know it", () -> TestNodes.splitAndKnown(a, b, node -> cluster(client, node)));
      List<NodeRuntime> nodes = List.of(a, b);
      Map<NodeRuntime, String> names = Map.of(a, nodeName(client, a), b, nodeName(client, b));
      Ownership ofA = new Ownership(first, Map.of("orders", 4), a.progress());
      // Requests each node got for orders the other folds: the ones it must have forwarded.
      Map<NodeRuntime, Long> forwarded = new HashMap<>(Map.of(a, 0L, b, 0L));
      for (int i = 0; i < 10; i++) {
        String order = "o" + i;
        String owner = names.get(ofA.owns("orders", order) ? a : b);
        NodeRuntime asked = nodes.get(i % 2);
        NodeRuntime other = nodes.get((i + 1) % 2);
        Reply placed = TestNodes.call(client, HttpMethod.POST, asked.httpPort(), "/v1/orders/" + order + "/commands",
            PLACE, Map.of());
        assertThat(placed.status()).as("place %s", order).isEqualTo(200);
        Reply paid = TestNodes.call(client, HttpMethod.POST, other.httpPort(), "/v1/orders/" + order + "/commands",
            "{\"type\":\"pay\",\"payload\":{\"amount\":5}}", Map.of("If-Match", "\"1\""));
        assertThat(paid.status()).as("pay %s on the other node", order).isEqualTo(200);
        assertThat(paid.etag()).isEqualTo("\"2\"");
        Reply outdated = TestNodes.call(client, HttpMethod.POST, asked.httpPort(), "/v1/orders/" + order + "/commands",
            "{\"type\":\"comment\",\"payload\":{\"text\":\"x\"}}", Map.of("If-Match", "\"1\""));
        assertThat(outdated.status()).isEqualTo(409);
        // Whichever node was asked, the owner decided: one of the two writes was forwarded to it.
        assertThat(List.of(placed.header("Kfold-Node"), paid.header("Kfold-Node"), outdated.header("Kfold-Node")))
            .as("nodes that decided the writes of %s", order).containsOnly(owner);
        for (NodeRuntime node : List.of(asked, other, asked)) {
          forwarded.merge(node, names.get(node).equals(owner) ? 0L : 1L, Long::sum);
        }
        for (NodeRuntime node : nodes) {
          Reply read = TestNodes.call(client, HttpMethod.GET, node.httpPort(), "/v1/orders/" + order, null, Map.of());
          assertThat(read.status()).isEqualTo(200);
          assertThat(read.header("Kfold-Node")).as("node that answered the read of %s", order).isEqualTo(owner);
          assertThat(read.body().path("version").asLong()).isEqualTo(2);
          assertThat(read.body().path("state").path("status").asText()).isEqualTo("paid");
          forwarded.merge(node, names.get(node).equals(owner) ? 0L : 1L, Long::sum);
        }
        assertThat(TestLog.events(first.eventsTopic("orders"), order)).hasSize(2);
      }
      for (NodeRuntime node : nodes) {
        assertThat(metric(client, node, "kfold_http_forwarded_total")).as("requests %s forwarded", names.get(node))
            .isEqualTo(forwarded.get(node));
      }
      // A node that holds a current copy of an order it does not fold (as a standby) still forwards a
      // plain read to the owner: only a read with ?stale=true is answered from the copy.
      for (int i = 0; i < 10; i++) {
        String order = "/v1/orders/o" + i;
        NodeRuntime other = ofA.owns("orders", "o" + i) ? b : a;
        String owner = names.get(ofA.owns("orders", "o" + i) ? a : b);
        Await.until("the copy of o" + i + " on the other node", () -> {
          Reply stale = TestNodes.call(client, HttpMethod.GET, other.httpPort(), order + "?stale=true", null, Map.of());
          return "true".equals(stale.header("Kfold-Stale")) && stale.body().path("version").asLong() == 2;
        });
        Reply read = TestNodes.call(client, HttpMethod.GET, other.httpPort(), order, null, Map.of());
        assertThat(read.header("Kfold-Node")).as("node that answered the read of o%d", i).isEqualTo(owner);
        assertThat(read.header("Kfold-Stale")).isNull();
      }

      // The change stream of an order the other node folds is relayed from it.
      String order = IntStream.range(0, 10).mapToObj(i -> "o" + i).filter(o -> !ofA.owns("orders", o))
          .findFirst().orElseThrow();
      List<String> frames = new CopyOnWriteArrayList<>();
      HttpClientResponse stream = openStream(http, a, order, null, frames);
      assertThat(stream.statusCode()).isEqualTo(200);
      assertThat(stream.getHeader("content-type")).isEqualTo("text/event-stream");
      assertThat(stream.getHeader("Kfold-Node")).as("node that answered the stream").isEqualTo(names.get(b));
      Await.until("the relayed stream opens with the state", () -> !frames.isEmpty());
      assertThat(frames.get(0)).startsWith("event: state\nid: 2");
      assertThat(TestNodes.call(client, HttpMethod.POST, a.httpPort(), "/v1/orders/" + order + "/commands",
          "{\"type\":\"comment\",\"payload\":{\"text\":\"relayed\"}}", Map.of()).status()).isEqualTo(200);
      Await.until("the relayed stream carries change 3", () -> frames.size() > 1);
      assertThat(frames).hasSize(2);
      assertThat(frames.get(1)).startsWith("event: change\nid: 3").contains("relayed");
      // A client reconnecting through the relay resumes after its Last-Event-ID.
      List<String> resumed = new CopyOnWriteArrayList<>();
      openStream(http, a, order, "2", resumed);
      Await.until("the resumed stream replays change 3", () -> !resumed.isEmpty());
      assertThat(resumed.get(0)).startsWith("event: change\nid: 3").contains("relayed");
    } finally {
      http.close();
      client.close();
      a.stop().await(60, TimeUnit.SECONDS);
      b.stop().await(60, TimeUnit.SECONDS);
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  @Test
  @DisplayName("while no node is known to fold an entity, a request for it waits up to http.forwardWaitMs: it is"
      + " forwarded once the owner is known again, and answered 503 by the node asked when the wait runs out")
  void waitsForTheOwner() throws Exception {
    Vertx vertx = Vertx.vertx();
    String app = TestNodes.newApp("owner-wait");
    NodeConfig first = TestNodes.quickRebalancesConfig(app, TestNodes.tempDir("owner-wait-a"));
    Map<String, String> env = TestNodes.quickRebalances(TestNodes.env(app, TestNodes.tempDir("owner-wait-b")));
    env.put("KFOLD_HTTP_FORWARD_WAIT_MS", "4000");
    NodeConfig second = NodeConfig.load(env);
    NodeRuntime a = NodeRuntime.start(vertx, first).await(60, TimeUnit.SECONDS);
    NodeRuntime b = NodeRuntime.start(vertx, second).await(60, TimeUnit.SECONDS);
    WebClient client = WebClient.create(vertx);
    try (KafkaProducer<byte[], byte[]> producer = TestNodes.plainProducer()) {
      Await.until("two nodes share the partitions and know it", () -> TestNodes.splitAndKnown(a, b, node -> cluster(client, node)));
      String nameOfA = nodeName(client, a);
      String nameOfB = nodeName(client, b);
      Ownership ofA = new Ownership(first, Map.of("orders", 4), a.progress());
      String order = IntStream.range(0, 100).mapToObj(i -> "w" + i).filter(o -> ofA.owns("orders", o))
          .findFirst().orElseThrow();
      assertThat(TestNodes.call(client, HttpMethod.POST, a.httpPort(), "/v1/orders/" + order + "/commands", PLACE,
          Map.of()).status()).isEqualTo(200);

      // As in a rebalance, no node is known to fold A's partitions: A's directory stops and withdraws
      // its claim, as a clean stop does, while A goes on folding them.
      byte[] key = nameOfA.getBytes(StandardCharsets.UTF_8);
      byte[] claimOfA = TestLog.records(first.nodesTopic()).stream().filter(r -> new String(r.key(),
          StandardCharsets.UTF_8).equals(nameOfA)).map(ConsumerRecord::value).reduce((x, y) -> y).orElseThrow();
      a.directory().close();
      Await.until("B no longer knows A", () -> TestNodes.call(client, HttpMethod.GET, b.httpPort(), "/v1/_cluster", null,
          Map.of()).body().path("nodes").size() == 1);

      // A read through B waits for the owner, and when none is known in time B answers 503 itself.
      CompletableFuture<Reply> read = async(() -> TestNodes.call(client, HttpMethod.GET, b.httpPort(), "/v1/orders/" + order,
          null, Map.of()));
      Await.until("B holds the read, waiting for the owner", () -> metric(client, b, "kfold_http_forward_waiting") == 1);
      Reply unavailable = read.get(30, TimeUnit.SECONDS);
      assertThat(unavailable.status()).isEqualTo(503);
      assertThat(unavailable.contentType()).isEqualTo("application/problem+json");
      assertThat(unavailable.body().path("status").asInt()).isEqualTo(503);
      assertThat(unavailable.body().path("detail").asText()).contains("no node folds");
      assertThat(unavailable.header("Kfold-Node")).as("node that answered 503").isEqualTo(nameOfB);
      assertThat(metric(client, b, "kfold_http_forward_waiting")).isZero();

      // A command through B waits too; once A's claim is back, B forwards it and A decides it.
      CompletableFuture<Reply> paid = async(() -> TestNodes.call(client, HttpMethod.POST, b.httpPort(),
          "/v1/orders/" + order + "/commands", "{\"type\":\"pay\",\"payload\":{\"amount\":5}}", Map.of()));
      Await.until("B holds the command, waiting for the owner", () -> metric(client, b, "kfold_http_forward_waiting") == 1);
      // A's last claim, sent again for it: B forwards to A at once (and would take A for dead a second later).
      producer.send(new ProducerRecord<>(first.nodesTopic(), key, claimOfA)).get();
      Reply decided = paid.get(30, TimeUnit.SECONDS);
      assertThat(decided.status()).as("pay through B: %s", decided.body()).isEqualTo(200);
      assertThat(decided.header("Kfold-Node")).as("node that decided the command").isEqualTo(nameOfA);
      assertThat(decided.etag()).isEqualTo("\"2\"");
      assertThat(metric(client, b, "kfold_http_forward_waiting")).isZero();
      assertThat(TestLog.events(first.eventsTopic("orders"), order)).hasSize(2);
    } finally {
      client.close();
      a.stop().await(60, TimeUnit.SECONDS);
      b.stop().await(60, TimeUnit.SECONDS);
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  private static JsonNode cluster(WebClient client, NodeRuntime node) throws Exception {
    return TestNodes.call(client, HttpMethod.GET, node.httpPort(), "/v1/_cluster", null, Map.of()).body();
  }

  /** The node's name, as {@code /v1/_cluster} and the Kfold-Node header give it. */
  private static String nodeName(WebClient client, NodeRuntime node) throws Exception {
    return cluster(client, node).path("node").asText();
  }

  /** A metric of the node's {@code /metrics} without labels. */
  private static long metric(WebClient client, NodeRuntime node, String name) throws Exception {
    String text = client.get(node.httpPort(), "127.0.0.1", "/metrics").send().await(10, TimeUnit.SECONDS).bodyAsString();
    return text.lines().filter(line -> line.startsWith(name + " ")).mapToLong(line -> (long) Double.parseDouble(line.split(" ")[1]))
        .findFirst().orElseThrow(() -> new AssertionError("no metric " + name + " in " + text));
  }

  /**
   * Opens the change stream of an order through {@code node}, every frame buffered into {@code frames}
   * (comments left out), frames split over chunks joined.
   */
  private static HttpClientResponse openStream(HttpClient http, NodeRuntime node, String order, String lastEventId,
                                               List<String> frames) throws Exception {
    RequestOptions options = new RequestOptions().setMethod(HttpMethod.GET).setPort(node.httpPort()).setHost("127.0.0.1")
        .setURI("/v1/orders/" + order + "/changes");
    if (lastEventId != null) {
      options.putHeader("Last-Event-ID", lastEventId);
    }
    return TestNodes.openStream(http, options, frames).await(10, TimeUnit.SECONDS);
  }

  /** Runs a blocking call off the test thread, for a request that waits while the test acts. */
  private static <T> CompletableFuture<T> async(Callable<T> call) {
    return CompletableFuture.supplyAsync(() -> {
      try {
        return call.call();
      } catch (Exception e) {
        throw new CompletionException(e);
      }
    });
  }

}
