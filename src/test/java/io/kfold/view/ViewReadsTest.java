package io.kfold.view;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.OpenApiContract;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.kfold.types.Envelopes;
import io.vertx.core.Vertx;
import io.vertx.core.eventbus.Message;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.client.WebClient;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Reading a view's rows on two nodes, each folding some of the rows: the list of rows walked at
 * sizes 1, 7 and 1000 through either node is the oracle's rows in key order, once each, with and
 * without a prefix; rows whose entities all left are not listed; a row's change stream gets its
 * new answer after a write; the event bus answers what HTTP does. The test's view is
 * {@link ViewFoldTestView} (count and sum of {@code /n} per {@code /group} of "members").
 */
@ExtendWith(TestBroker.class)
class ViewReadsTest {

  private static final String VIEW = ViewFoldTestView.NAME;

  /** The view's first version: this test asks for no rebuild. */
  private static final String VERSION = ViewVersion.of(new ViewFoldTestView(), 1).toString();
  private static final int KEYS = 400;
  private static final int[] PAGE_SIZES = {1, 7, 1000};
  /** Prefixes the walks filter by: overlapping families, one key, and none. */
  private static final String[] PREFIXES = {"ab", "abc", "b1", "c:2", "zz"};

  private final Random random = new Random(1414);
  /** The test's own fold of what it wrote: key → state. */
  private final Map<String, ObjectNode> model = new TreeMap<>();

  @Test
  @DisplayName("two nodes: row lists at sizes 1, 7 and 1000 with and without prefixes equal the oracle in key order;"
      + " SSE gets a row's new answer; the bus get equals the HTTP get")
  void rowsThroughEitherNode() throws Exception {
    String app = TestNodes.newApp("vreads");
    List<Vertx> vertxes = List.of(Vertx.vertx(), Vertx.vertx());
    List<NodeRuntime> nodes = new ArrayList<>();
    WebClient client = WebClient.create(vertxes.get(0));
    HttpClient streams = vertxes.get(0).createHttpClient();
    try (KafkaProducer<byte[], byte[]> producer = TestNodes.plainProducer()) {
      List<io.vertx.core.Future<NodeRuntime>> starting = new ArrayList<>();
      NodeConfig config = null;
      for (int i = 0; i < 2; i++) {
        Map<String, String> env = new HashMap<>(ViewFoldTest.env(app, TestNodes.tempDir("vreads-" + i)));
        // No standby copies: a read that does not reach the node folding the row then finds no row,
        // where an equal copy of the row would hide it.
        env.put("KFOLD_FOLD_STANDBY_REPLICAS", "0");
        config = NodeConfig.load(env);
        starting.add(NodeRuntime.start(vertxes.get(i), config, NodeRuntime.Options.DEFAULTS.withView(new ViewFoldTestView())));
      }
      for (io.vertx.core.Future<NodeRuntime> node : starting) {
        nodes.add(node.await(60, TimeUnit.SECONDS));
      }
      awaitSplit(client, nodes, config);
      writeRandomPatches(producer, config, 3000);
      awaitRows(client, nodes.get(0));
      OpenApiContract api = OpenApiContract.parse(openApi(client, nodes.get(0)));

      List<String> expected = new ArrayList<>(oracle().keySet());
      assertThat(expected).as("rows of the oracle").hasSizeGreaterThan(50);
      assertThat(model.values().stream().anyMatch(state -> !state.has("group"))).as("members that left every row")
          .isTrue();
      for (NodeRuntime node : nodes) {
        for (int size : PAGE_SIZES) {
          checkWalk(client, node, api, size, null);
          for (String prefix : PREFIXES) {
            checkWalk(client, node, api, size, prefix);
          }
        }
      }

      NodeRuntime first = nodes.get(0);
      assertBadRequest(client, first, api, "limit=0", "limit is '0'");
      assertBadRequest(client, first, api, "after=not-a-cursor", "'after' is not a cursor this API gave");
      assertBadRequest(client, first, api, "prefix=-x", "prefix '-x' starts no row key");
      assertBadRequest(client, first, api, "nope=1", "'nope' is no parameter of a list of rows");
      Reply unknown = TestNodes.call(client, HttpMethod.GET, first.httpPort(), "/v1/_views/nope", null, Map.of());
      assertThat(unknown.status()).as("the list of an unknown view").isEqualTo(404);
      api.assertAnswer("GET", "/v1/_views/{view}", unknown);
      Reply noRow = TestNodes.call(client, HttpMethod.GET, first.httpPort(), "/v1/_views/" + VIEW + "/no-such-row", null,
          Map.of());
      assertThat(noRow.status()).as("a row that does not exist").isEqualTo(404);
      api.assertAnswer("GET", "/v1/_views/{view}/{key}", noRow);
      for (NodeRuntime node : nodes) {
        Reply views = TestNodes.call(client, HttpMethod.GET, node.httpPort(), "/v1/_views", null, Map.of());
        assertThat(views.status()).as("GET /v1/_views: %s", views.body()).isEqualTo(200);
        api.assertAnswer("GET", "/v1/_views", views);
        assertThat(views.body().path("views").findValuesAsText("name")).as("the views of node %d", node.httpPort())
            .containsExactly(VIEW);
      }

      // The bus answers as HTTP does, through either node, for rows either node folds.
      for (int i = 0; i < 2; i++) {
        for (String key : expected) {
          Reply http = TestNodes.call(client, HttpMethod.GET, nodes.get(i).httpPort(), "/v1/_views/" + VIEW + "/" + key,
              null, Map.of());
          assertThat(http.status()).isEqualTo(200);
          api.assertAnswer("GET", "/v1/_views/{view}/{key}", http);
          assertThat(busGet(vertxes.get(i), key)).as("bus get of row %s on node %d", key, i).isEqualTo(http.body());
        }
        Vertx vertx = vertxes.get(i);
        assertThatThrownBy(() -> vertx.eventBus().<JsonObject>request("kfold.view." + VIEW + ".get",
            new JsonObject().put("key", "no-such-row")).await(30, TimeUnit.SECONDS))
            .isInstanceOfSatisfying(ReplyException.class, e -> assertThat(e.failureCode()).isEqualTo(404));
      }

      // A row's change stream, opened on each node (so on one that does not fold the row too: the
      // stream is forwarded), gets its new answer after a member joins it.
      String row = expected.get(expected.size() / 2);
      List<List<String>> frames = List.of(new CopyOnWriteArrayList<>(), new CopyOnWriteArrayList<>());
      for (int i = 0; i < 2; i++) {
        TestNodes.openStream(streams, new RequestOptions().setMethod(HttpMethod.GET).setHost("127.0.0.1")
            .setPort(nodes.get(i).httpPort()).setURI("/v1/_views/" + VIEW + "/" + row + "/changes"), frames.get(i))
            .await(10, TimeUnit.SECONDS);
      }
      JsonNode before = TestNodes.call(client, HttpMethod.GET, first.httpPort(), "/v1/_views/" + VIEW + "/" + row,
          null, Map.of()).body();
      for (int i = 0; i < 2; i++) {
        awaitFrame(frames.get(i), before, "node " + i + ": the row's current answer first");
      }
      write(producer, config, "joiner", JsonNodeFactory.instance.objectNode().put("group", row).put("n", 1000));
      JsonNode after = JsonNodeFactory.instance.objectNode().put("key", row)
          .<ObjectNode>set("row", JsonNodeFactory.instance.objectNode()
              .put("count", before.get("row").get("count").asLong() + 1)
              .put("sum", before.get("row").get("sum").asLong() + 1000))
          .put("entities", before.get("entities").asLong() + 1).put("version", VERSION);
      for (int i = 0; i < 2; i++) {
        awaitFrame(frames.get(i), after, "node " + i + ": the row's answer after a member joined");
      }
      // Three more join in one write: the fold may apply them in one batch, and sends the row's
      // answer once per batch, with the row after its last contribution.
      List<Future<RecordMetadata>> joined = new ArrayList<>();
      for (int j = 1; j <= 3; j++) {
        joined.add(send(producer, config, "joiner-" + j, JsonNodeFactory.instance.objectNode().put("group", row).put("n", j)));
      }
      producer.flush();
      for (Future<RecordMetadata> one : joined) {
        one.get(30, TimeUnit.SECONDS);
      }
      JsonNode last = JsonNodeFactory.instance.objectNode().put("key", row)
          .<ObjectNode>set("row", JsonNodeFactory.instance.objectNode()
              .put("count", before.get("row").get("count").asLong() + 4)
              .put("sum", before.get("row").get("sum").asLong() + 1006))
          .put("entities", before.get("entities").asLong() + 4).put("version", VERSION);
      for (int i = 0; i < 2; i++) {
        awaitFrame(frames.get(i), last, "node " + i + ": the row's answer after three more joined at once");
      }
      for (String frame : frames.get(0)) {
        api.assertSchema("ViewRow", Envelopes.parse(data(frame).getBytes(StandardCharsets.UTF_8)));
      }
    } finally {
      streams.close().await(10, TimeUnit.SECONDS);
      client.close();
      for (NodeRuntime node : nodes) {
        node.stop().await(60, TimeUnit.SECONDS);
      }
      for (Vertx vertx : vertxes) {
        vertx.close().await(30, TimeUnit.SECONDS);
      }
    }
  }

  /** A row through the event bus of {@code vertx}'s node; a failed reply fails the test with its code. */
  private static JsonNode busGet(Vertx vertx, String key) throws Exception {
    try {
      Message<JsonObject> reply = vertx.eventBus().<JsonObject>request("kfold.view." + VIEW + ".get",
          new JsonObject().put("key", key)).await(30, TimeUnit.SECONDS);
      return Envelopes.parse(reply.body().toBuffer().getBytes());
    } catch (ReplyException e) {
      throw new AssertionError("the bus get of row " + key + " failed with " + e.failureCode() + ": " + e.getMessage(), e);
    }
  }

  private static String openApi(WebClient client, NodeRuntime node) throws Exception {
    return client.get(node.httpPort(), "127.0.0.1", "/openapi.yaml").send().await(30, TimeUnit.SECONDS).bodyAsString();
  }

  /** Until both nodes fold some partitions of the members and of the view's rows, and know each other's claims. */
  private static void awaitSplit(WebClient client, List<NodeRuntime> nodes, NodeConfig config) throws Exception {
    long deadline = System.currentTimeMillis() + 60_000;
    String members = config.eventsTopic(ViewFoldTestView.TYPE);
    String rows = config.eventsTopic(ViewType.typeName(VIEW));
    while (true) {
      boolean split = true;
      for (NodeRuntime node : nodes) {
        var lag = node.progress().lag().keySet();
        split &= node.progress().caughtUp() && lag.stream().anyMatch(p -> p.topic().equals(members))
            && lag.stream().anyMatch(p -> p.topic().equals(rows))
            && TestNodes.call(client, HttpMethod.GET, node.httpPort(), "/v1/_cluster", null, Map.of()).body()
                .path("nodes").size() == nodes.size();
      }
      if (split) {
        return;
      }
      assertThat(System.currentTimeMillis()).as("the partitions split over both nodes").isLessThan(deadline);
      Thread.sleep(100);
    }
  }

  /**
   * Random patches: a member joins a row of one of several key families (so that prefixes select
   * some), changes its n, or leaves every row; some rows lose all their members.
   */
  private void writeRandomPatches(KafkaProducer<byte[], byte[]> producer, NodeConfig config, int events)
      throws Exception {
    String[] families = {"ab", "abc", "b", "c:", "d-"};
    List<Future<RecordMetadata>> sent = new ArrayList<>();
    for (int i = 0; i < events; i++) {
      String key = "m" + random.nextInt(KEYS);
      ObjectNode patch = JsonNodeFactory.instance.objectNode();
      int choice = random.nextInt(10);
      if (choice < 6) {
        patch.put("group", families[random.nextInt(families.length)] + random.nextInt(30));
      } else if (choice < 9) {
        patch.put("n", random.nextInt(101) - 50);
      } else {
        patch.putNull("group");
      }
      sent.add(send(producer, config, key, patch));
    }
    producer.flush();
    for (Future<RecordMetadata> one : sent) {
      one.get(30, TimeUnit.SECONDS);
    }
  }

  private void write(KafkaProducer<byte[], byte[]> producer, NodeConfig config, String key, ObjectNode patch)
      throws Exception {
    Future<RecordMetadata> sent = send(producer, config, key, patch);
    producer.flush();
    sent.get(30, TimeUnit.SECONDS);
  }

  private Future<RecordMetadata> send(KafkaProducer<byte[], byte[]> producer, NodeConfig config, String key,
                                      ObjectNode patch) {
    ObjectNode state = model.computeIfAbsent(key, k -> JsonNodeFactory.instance.objectNode());
    patch.fields().forEachRemaining(member -> {
      if (member.getValue().isNull()) {
        state.remove(member.getKey());
      } else {
        state.set(member.getKey(), member.getValue());
      }
    });
    return producer.send(new ProducerRecord<>(config.eventsTopic(ViewFoldTestView.TYPE),
        key.getBytes(StandardCharsets.UTF_8), Envelopes.toBytes(patch)));
  }

  /** The rows the test's fold of the patches says there are, in key order: {key, row, entities} (compared as text). */
  private Map<String, JsonNode> oracle() {
    Map<String, long[]> sums = new TreeMap<>();
    model.values().forEach(state -> {
      if (state.has("group")) {
        long[] row = sums.computeIfAbsent(state.get("group").asText(), g -> new long[2]);
        row[0]++;
        row[1] += state.has("n") ? state.get("n").asLong() : 0;
      }
    });
    Map<String, JsonNode> rows = new TreeMap<>();
    sums.forEach((key, sum) -> rows.put(key, JsonNodeFactory.instance.objectNode().put("key", key)
        .<ObjectNode>set("row", JsonNodeFactory.instance.objectNode().put("count", sum[0]).put("sum", sum[1]))
        .put("entities", sum[0]).put("version", VERSION)));
    return rows;
  }

  /** Until a walk of every row equals the oracle: the writes are folded, and so are their contributions. */
  private void awaitRows(WebClient client, NodeRuntime node) throws Exception {
    long deadline = System.currentTimeMillis() + 60_000;
    List<String> expected = oracle().values().stream().map(JsonNode::toString).toList();
    List<String> walked = List.of();
    while (System.currentTimeMillis() < deadline) {
      walked = walk(client, node, null, 1000, null).stream().map(JsonNode::toString).toList();
      if (walked.equals(expected)) {
        return;
      }
      Thread.sleep(100);
    }
    assertThat(walked).as("the rows once every write is folded").containsExactlyElementsOf(expected);
  }

  private void checkWalk(WebClient client, NodeRuntime node, OpenApiContract api, int size, String prefix)
      throws Exception {
    List<String> walked = walk(client, node, prefix, size, api).stream().map(JsonNode::toString).toList();
    String as = "rows" + (prefix == null ? "" : " with prefix " + prefix) + " at size " + size + " through the node on "
        + node.httpPort();
    assertThat(new HashSet<>(walked)).as("%s: no duplicates", as).hasSameSizeAs(walked);
    List<String> expected = oracle().values().stream()
        .filter(row -> prefix == null || row.get("key").asText().startsWith(prefix)).map(JsonNode::toString).toList();
    assertThat(walked).as(as).containsExactlyElementsOf(expected);
  }

  /** Every page of the list, in order; each answer checked against the contract when one is given. */
  private static List<JsonNode> walk(WebClient client, NodeRuntime node, String prefix, int size, OpenApiContract api)
      throws Exception {
    List<JsonNode> rows = new ArrayList<>();
    String after = null;
    for (int pages = 0; pages < 10_000; pages++) {
      String path = "/v1/_views/" + VIEW + "?limit=" + size + (prefix == null ? "" : "&prefix=" + prefix)
          + (after == null ? "" : "&after=" + URLEncoder.encode(after, StandardCharsets.UTF_8));
      Reply page = TestNodes.call(client, HttpMethod.GET, node.httpPort(), path, null, Map.of());
      assertThat(page.status()).as("GET %s: %s", path, page.body()).isEqualTo(200);
      if (api != null) {
        api.assertAnswer("GET", "/v1/_views/{view}", page);
      }
      page.body().get("items").forEach(rows::add);
      assertThat(page.body().get("items").size()).as("a page's size").isLessThanOrEqualTo(size);
      if (page.body().get("next").isNull()) {
        return rows;
      }
      assertThat(page.body().get("items").size()).as("a page followed by another is full").isEqualTo(size);
      after = page.body().get("next").asText();
    }
    throw new AssertionError("the walk did not end");
  }

  private static void assertBadRequest(WebClient client, NodeRuntime node, OpenApiContract api, String query,
                                       String message) throws Exception {
    Reply reply = TestNodes.call(client, HttpMethod.GET, node.httpPort(), "/v1/_views/" + VIEW + "?" + query, null,
        Map.of());
    assertThat(reply.status()).as("GET ?%s", query).isEqualTo(400);
    assertThat(reply.body().toString()).contains(message);
    api.assertAnswer("GET", "/v1/_views/{view}", reply);
  }

  private static void awaitFrame(List<String> frames, JsonNode answer, String what) throws Exception {
    long deadline = System.currentTimeMillis() + 20_000;
    while (true) {
      for (String frame : frames) {
        if (frame.contains("event: row") && Envelopes.parse(data(frame).getBytes(StandardCharsets.UTF_8)).toString().equals(answer.toString())) {
          return;
        }
      }
      assertThat(System.currentTimeMillis()).as("%s: %s arrives; got %s", what, answer, frames).isLessThan(deadline);
      Thread.sleep(20);
    }
  }

  private static String data(String frame) {
    return frame.substring(frame.indexOf("data: ") + "data: ".length());
  }
}
