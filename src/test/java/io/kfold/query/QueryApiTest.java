package io.kfold.query;

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
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.WebClient;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code GET /v1/{type}} against a real broker and real stores, on the shipped configuration's
 * {@code users} type (a merge type indexed by {@code email}): walking every page, through one node
 * or any of two or three, returns each matching entity once, in (value, id) order, while other
 * users are written; bad queries answer 400.
 */
@ExtendWith(TestBroker.class)
class QueryApiTest {

  private static final int USERS = 150;
  private static final int[] PAGE_SIZES = {1, 7, 1000};
  /** Users written while the two-node walks run (bounded, so that walks at size 1 end). */
  private static final int CONCURRENT_USERS = 300;

  /** What the test wrote: user id → email, a string or an array of strings. */
  private final Map<String, JsonNode> emails = new TreeMap<>();
  /** Per users partition, the offset after the last event written. */
  private final Map<Integer, Long> written = new HashMap<>();

  @Test
  @DisplayName("one node: every page walk at sizes 1, 7 and 1000 returns each match once, in order; bad queries answer 400")
  void oneNode() throws Exception {
    String app = TestNodes.newApp("query1");
    Vertx vertx = Vertx.vertx();
    WebClient client = WebClient.create(vertx);
    NodeConfig config = TestNodes.config(app, TestNodes.tempDir("query1"));
    NodeRuntime node = TestNodes.startCaughtUp(vertx, config);
    try (KafkaProducer<byte[], byte[]> producer = TestNodes.plainProducer()) {
      writeUsers(producer, config);
      awaitFolded(List.of(node), config);
      OpenApiContract api = OpenApiContract.parse(openApi(client, node));
      for (Map.Entry<String, List<String>> query : expectedQueries().entrySet()) {
        for (int size : PAGE_SIZES) {
          List<String> walked = walk(client, node, query.getKey(), size, api);
          assertThat(walked).as("pages of %s at size %d through one node",
                  query.getKey().isEmpty() ? "every user" : query.getKey(), size)
              .containsExactlyElementsOf(query.getValue());
        }
      }

      String everyUser = walkFirst(client, node, "limit=3").path("next").asText();
      assertBadRequest(client, node, api, "nope=1", "'nope' names no index of users; its indexes are [email]");
      assertBadRequest(client, node, api, "email.between=a", "'email.between' names no index");
      assertBadRequest(client, node, api, "after=not-a-cursor", "'after' is not a cursor this API gave");
      assertBadRequest(client, node, api, "email=p1%40x&after=" + everyUser, "'after' is the cursor of another query");
      assertBadRequest(client, node, api, "limit=0", "limit is '0'; expected a whole number from 1 to 1000");
      assertBadRequest(client, node, api, "limit=1001", "limit is '1001'");
      assertBadRequest(client, node, api, "fields=email", "fields is 'email'");
      assertBadRequest(client, node, api, "email=a&email.from=b", "has both a value and a range");
      assertBadRequest(client, node, api, "email=a&email=b", "'email' is given 2 times");
      assertBadRequest(client, node, api, "stale=maybe", "stale is 'maybe'; expected true or false");
      Reply unknownType = TestNodes.call(client, HttpMethod.GET, node.httpPort(), "/v1/nope", null, Map.of());
      assertThat(unknownType.status()).isEqualTo(404);
      api.assertAnswer("GET", "/v1/{type}", unknownType);
    } finally {
      client.close();
      node.stop().await(60, TimeUnit.SECONDS);
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  @Test
  @DisplayName("two nodes: the pages through either node are the whole set, once each, in order, while other users are"
      + " written meanwhile")
  void twoNodes() throws Exception {
    walksWhileWriting("query2", 2);
  }

  @Test
  @DisplayName("three nodes: the pages through each node are the whole set, once each, in order, while other users are"
      + " written meanwhile")
  void threeNodes() throws Exception {
    walksWhileWriting("query3", 3);
  }

  /**
   * {@code count} nodes, each folding some users partitions and knowing the others' claims: every
   * query walked through each node at sizes 1, 7 and 1000, while new matching users are written.
   */
  private void walksWhileWriting(String name, int count) throws Exception {
    String app = TestNodes.newApp(name);
    List<Vertx> vertxes = new ArrayList<>();
    List<NodeRuntime> nodes = new ArrayList<>();
    AtomicBoolean writing = new AtomicBoolean(true);
    Thread concurrentWriter = null;
    for (int i = 0; i < count; i++) {
      vertxes.add(Vertx.vertx());
    }
    WebClient client = WebClient.create(vertxes.get(0));
    try (KafkaProducer<byte[], byte[]> producer = TestNodes.plainProducer()) {
      NodeConfig config = TestNodes.quickRebalancesConfig(app, TestNodes.tempDir(name + "-0"));
      // Started together: the group shares the partitions out once rather than once per newcomer.
      // Their joins still come apart (a start takes a while), and each later one waits for the
      // members' next heartbeat: quick rebalances make that a second.
      List<io.vertx.core.Future<NodeRuntime>> starting = new ArrayList<>();
      for (int i = 0; i < count; i++) {
        starting.add(NodeRuntime.start(vertxes.get(i),
            i == 0 ? config : TestNodes.quickRebalancesConfig(app, TestNodes.tempDir(name + "-" + i))));
      }
      for (io.vertx.core.Future<NodeRuntime> node : starting) {
        nodes.add(node.await(60, TimeUnit.SECONDS));
      }
      awaitSplitAndKnown(client, nodes, config);
      writeUsers(producer, config);
      awaitFolded(nodes, config);

      // New users, some matching every query, are written during the walks: they may or may not be
      // in a walk, once at most, in order; the users written before must all be there, once.
      AtomicInteger concurrent = new AtomicInteger();
      String topic = config.eventsTopic("users");
      concurrentWriter = new Thread(() -> {
        while (writing.get() && concurrent.get() < CONCURRENT_USERS) {
          int n = concurrent.getAndIncrement();
          ObjectNode patch = JsonNodeFactory.instance.objectNode().put("email", concurrentEmail(n));
          producer.send(new ProducerRecord<>(topic, ("z" + n).getBytes(StandardCharsets.UTF_8),
              Envelopes.toBytes(patch)));
          try {
            Thread.sleep(5);  // pacing only: a steady trickle of writes beside the reads
          } catch (InterruptedException e) {
            return;
          }
        }
      }, "concurrent-writer");
      concurrentWriter.start();

      for (Map.Entry<String, List<String>> query : expectedQueries().entrySet()) {
        for (int size : PAGE_SIZES) {
          for (NodeRuntime node : nodes) {
            List<String> walked = walk(client, node, query.getKey(), size, null);
            String as = "pages of " + (query.getKey().isEmpty() ? "every user" : query.getKey()) + " at size " + size
                + " through the node on " + node.httpPort() + " of " + count;
            assertThat(new HashSet<>(walked)).as("%s: no duplicates", as).hasSameSizeAs(walked);
            assertThat(walked).as("%s: in order", as).isSortedAccordingTo(order(query.getKey()));
            assertThat(walked.stream().filter(key -> !key.startsWith("z")).toList()).as(as)
                .containsExactlyElementsOf(query.getValue());
          }
        }
      }
      writing.set(false);
      concurrentWriter.join(10_000);
      assertThat(concurrent.get()).as("users written during the walks").isPositive();
    } finally {
      writing.set(false);
      if (concurrentWriter != null) {
        concurrentWriter.join(10_000);
      }
      client.close();
      for (NodeRuntime node : nodes) {
        node.stop().await(60, TimeUnit.SECONDS);
      }
      for (Vertx vertx : vertxes) {
        vertx.close().await(30, TimeUnit.SECONDS);
      }
    }
  }

  /** The email of the n-th user written during the walks: one that some queries match. */
  private static String concurrentEmail(int n) {
    return "p" + (n % 7) + "@x";
  }

  /**
   * The order of a query's answers, for any user the walks can meet: (value, id), where the value
   * is the first of the user's values in a range, and the same for all users in an equality.
   */
  private Comparator<String> order(String query) {
    Comparator<String> byId = Comparator.comparing(key -> key.getBytes(StandardCharsets.UTF_8), Arrays::compareUnsigned);
    if (!query.contains(".from=")) {
      return byId;
    }
    return Comparator.comparing((String key) -> firstInRange(key.startsWith("z")
        ? JsonNodeFactory.instance.textNode(concurrentEmail(Integer.parseInt(key.substring(1)))) : emails.get(key)))
        .thenComparing(byId);
  }

  /** The first of a user's values in the range the queries use, null when none is. */
  private static String firstInRange(JsonNode email) {
    return values(email).stream().filter(v -> v.compareTo("p2@x") >= 0 && v.compareTo("p5@x") < 0).findFirst()
        .orElse(null);
  }

  /**
   * Users {@code u0…} (ids of several lengths, so that id order is not write order) with an email
   * among seven, some with an array of two, some with none.
   */
  private void writeUsers(KafkaProducer<byte[], byte[]> producer, NodeConfig config) throws Exception {
    List<Future<RecordMetadata>> sent = new ArrayList<>();
    for (int i = 0; i < USERS; i++) {
      String key = "u" + i;
      ObjectNode patch = JsonNodeFactory.instance.objectNode().put("name", "user " + i);
      if (i % 11 == 0) {
        patch.putArray("email").add("p" + (i % 7) + "@x").add("p" + ((i + 3) % 7) + "@x");
      } else if (i % 13 != 0) {
        patch.put("email", "p" + (i % 7) + "@x");
      }
      if (patch.has("email")) {
        emails.put(key, patch.get("email"));
      } else {
        emails.put(key, null);
      }
      sent.add(producer.send(new ProducerRecord<>(config.eventsTopic("users"), key.getBytes(StandardCharsets.UTF_8),
          Envelopes.toBytes(patch))));
    }
    producer.flush();
    for (Future<RecordMetadata> one : sent) {
      RecordMetadata metadata = one.get(30, TimeUnit.SECONDS);
      written.merge(metadata.partition(), metadata.offset() + 1, Math::max);
    }
  }

  /** Each query (its parameters, without limit or after) and the keys it must answer, in order. */
  private Map<String, List<String>> expectedQueries() {
    Map<String, List<String>> queries = new java.util.LinkedHashMap<>();
    queries.put("", new ArrayList<>(emails.keySet()));  // a TreeMap: ids in order, ASCII as UTF-8 bytes
    queries.put("fields=key", new ArrayList<>(emails.keySet()));
    queries.put("email=p3%40x", keysWhere(values -> values.contains("p3@x")));
    queries.put("email=p3%40x&fields=key", keysWhere(values -> values.contains("p3@x")));
    // A range: in (value, id) order, each user at the first of its values in the range.
    Map<String, String> firstValue = new TreeMap<>();
    emails.forEach((key, email) -> {
      if (firstInRange(email) != null) {
        firstValue.put(key, firstInRange(email));
      }
    });
    queries.put("email.from=p2%40x&email.to=p5%40x", firstValue.keySet().stream()
        .sorted(Comparator.comparing((String key) -> firstValue.get(key)).thenComparing(key -> key)).toList());
    return queries;
  }

  private List<String> keysWhere(Predicate<List<String>> test) {
    return emails.entrySet().stream().filter(e -> test.test(values(e.getValue()))).map(Map.Entry::getKey).toList();
  }

  /** A user's email values as the index holds them: each distinct element of an array, in order. */
  private static List<String> values(JsonNode email) {
    if (email == null) {
      return List.of();
    }
    if (!email.isArray()) {
      return List.of(email.asText());
    }
    List<String> values = new ArrayList<>();
    email.forEach(v -> values.add(v.asText()));
    return values.stream().distinct().sorted().toList();
  }

  /** The keys of every page of a query, following next until it is null. */
  private static List<String> walk(WebClient client, NodeRuntime node, String query, int size, OpenApiContract api)
      throws Exception {
    List<String> keys = new ArrayList<>();
    String after = null;
    for (int pages = 0; pages <= USERS * 40; pages++) {
      String path = "/v1/users?" + (query.isEmpty() ? "" : query + "&") + "limit=" + size
          + (after == null ? "" : "&after=" + URLEncoder.encode(after, StandardCharsets.UTF_8));
      Reply page = TestNodes.call(client, HttpMethod.GET, node.httpPort(), path, null, Map.of());
      assertThat(page.status()).as("%s: %s", path, page.body()).isEqualTo(200);
      if (api != null) {
        api.assertAnswer("GET", "/v1/{type}", page);
      }
      assertThat(page.body().path("items").size()).as(path).isLessThanOrEqualTo(size);
      for (JsonNode item : page.body().path("items")) {
        keys.add(item.path("key").asText());
        assertThat(item.has("state")).as("%s: state of %s", path, item).isEqualTo(!query.contains("fields=key"));
      }
      if (page.body().path("next").isNull()) {
        return keys;
      }
      after = page.body().path("next").asText();
    }
    throw new AssertionError("the pages of " + query + " did not end");
  }

  private static JsonNode walkFirst(WebClient client, NodeRuntime node, String query) throws Exception {
    return TestNodes.call(client, HttpMethod.GET, node.httpPort(), "/v1/users?" + query, null, Map.of()).body();
  }

  private static String openApi(WebClient client, NodeRuntime node) throws Exception {
    return client.get(node.httpPort(), "127.0.0.1", "/openapi.yaml").send().await(10, TimeUnit.SECONDS).bodyAsString();
  }

  private static void assertBadRequest(WebClient client, NodeRuntime node, OpenApiContract api, String query, String detail)
      throws Exception {
    Reply reply = TestNodes.call(client, HttpMethod.GET, node.httpPort(), "/v1/users?" + query, null, Map.of());
    assertThat(reply.status()).as("%s: %s", query, reply.body()).isEqualTo(400);
    assertThat(reply.contentType()).isEqualTo("application/problem+json");
    assertThat(reply.body().path("detail").asText()).as(query).contains(detail);
    api.assertAnswer("GET", "/v1/{type}", reply);
  }

  /** Waits until each users partition's node has folded every event written to it (a sentinel per partition). */
  private void awaitFolded(List<NodeRuntime> nodes, NodeConfig config) throws InterruptedException {
    long deadline = System.currentTimeMillis() + 60_000;
    for (Map.Entry<Integer, Long> partition : written.entrySet()) {
      TopicPartition topicPartition = new TopicPartition(config.eventsTopic("users"), partition.getKey());
      while (nodes.stream().filter(n -> n.progress().folds(topicPartition))
          .noneMatch(n -> n.store().nextOffset(topicPartition.topic(), topicPartition.partition()).orElse(0)
              >= partition.getValue())) {
        if (System.currentTimeMillis() > deadline) {
          throw new AssertionError(topicPartition + " not folded to " + partition.getValue());
        }
        Thread.sleep(20);
      }
    }
  }

  /**
   * Waits until both nodes fold some users partitions, all caught up, and each node's directory
   * shows both nodes' claims covering every partition the two fold: then a query through either
   * node reads some partitions here and asks the other node for the rest.
   */
  static void awaitSplitAndKnown(WebClient client, List<NodeRuntime> nodes, NodeConfig config) throws Exception {
    long deadline = System.currentTimeMillis() + 60_000;
    while (!splitAndKnown(client, nodes, config)) {
      if (System.currentTimeMillis() > deadline) {
        throw new AssertionError("the users partitions did not split over both nodes, known by each");
      }
      Thread.sleep(100);
    }
  }

  private static boolean splitAndKnown(WebClient client, List<NodeRuntime> nodes, NodeConfig config) throws Exception {
    Set<String> folded = new HashSet<>();
    for (NodeRuntime node : nodes) {
      if (!node.progress().caughtUp()
          || node.progress().lag().keySet().stream().noneMatch(p -> p.topic().equals(config.eventsTopic("users")))) {
        return false;
      }
      node.progress().lag().keySet().forEach(p -> folded.add(p.toString()));
    }
    for (NodeRuntime node : nodes) {
      JsonNode claims = TestNodes.call(client, HttpMethod.GET, node.httpPort(), "/v1/_cluster", null, Map.of()).body()
          .path("nodes");
      Set<String> claimed = new HashSet<>();
      claims.forEach(claim -> claim.path("partitions").forEach(p -> claimed.add(p.asText())));
      if (claims.size() != nodes.size() || !claimed.equals(folded)) {
        return false;
      }
    }
    return true;
  }
}
