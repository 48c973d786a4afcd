package io.kfold.query;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.KfoldProcess;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.types.Envelopes;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Queries while the partitions move, with kfold processes on a real broker: every answer is the
 * whole expected set or a 503, never a partial list, while a node joins and another stops; and a
 * partition whose only node was killed makes a query 503 naming it, while {@code stale=true}
 * answers the whole set from a standby copy, marked stale.
 */
@ExtendWith(TestBroker.class)
class QueryRebalanceTest {

  private static final Logger LOG = LoggerFactory.getLogger(QueryRebalanceTest.class);
  private static final int USERS = 200;
  private static final int PAGE = 37;

  private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

  @Test
  @DisplayName("a query during a rebalance is complete or 503, never partial; with the only node of a partition"
      + " killed, 503 naming it, and stale=true answers from the standby copy")
  void completeOr503() throws Exception {
    String app = TestNodes.newApp("qrebal");
    // Node 0 answers the queries during the rebalance, and waits long for owners; node 2, which
    // joins, waits 1 s: it answers the query with a killed partition.
    List<KfoldProcess> nodes = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      Map<String, String> env = TestNodes.env(app, TestNodes.tempDir("qrebal-" + i));
      // Node 0 is killed at the end and its partitions must stay without a live node while the
      // test asks: its session outlasts those two queries by far, even on a slow machine.
      env.put("KFOLD_KAFKA_SESSION_TIMEOUT_MS", i == 0 ? "30000" : "10000");
      env.put("KFOLD_HTTP_FORWARD_WAIT_MS", i == 0 ? "15000" : i == 1 ? "5000" : "1000");
      nodes.add(new KfoldProcess(env, Path.of("target", "qrebal-" + app + "-" + i + ".log")));
    }
    KfoldProcess asker = nodes.get(0);
    KfoldProcess leaving = nodes.get(1);
    KfoldProcess joining = nodes.get(2);
    String topic = app + ".users.events";
    ExecutorService threads = Executors.newFixedThreadPool(2);
    AtomicBoolean querying = new AtomicBoolean(true);
    try (KafkaProducer<byte[], byte[]> producer = TestNodes.plainProducer()) {
      var started = threads.submit(() -> {
        leaving.start();
        return null;
      });
      asker.start();
      started.get(150, TimeUnit.SECONDS);
      awaitSpread(List.of(asker, leaving), topic);

      Map<String, String> emails = new TreeMap<>();
      for (int i = 0; i < USERS; i++) {
        String key = "u" + i;
        emails.put(key, "p" + (i % 7) + "@x");
        ObjectNode patch = JsonNodeFactory.instance.objectNode().put("name", "user " + i).put("email", emails.get(key));
        producer.send(new ProducerRecord<>(topic, key.getBytes(StandardCharsets.UTF_8), Envelopes.toBytes(patch)));
      }
      producer.flush();
      List<String> everyone = new ArrayList<>(emails.keySet());
      List<String> p3 = emails.entrySet().stream().filter(e -> e.getValue().equals("p3@x")).map(Map.Entry::getKey)
          .toList();
      awaitAnswer(asker, "limit=1000", everyone, false);

      // Queries in a loop through node 0: all users in one page, an index equality, and a walk of
      // every user page by page (restarted when a page answers 503: its cursor is still good, but a
      // walk is checked whole).
      AtomicInteger complete = new AtomicInteger();
      AtomicInteger unavailable = new AtomicInteger();
      ConcurrentLinkedQueue<Long> completeAt = new ConcurrentLinkedQueue<>();
      ConcurrentLinkedQueue<String> wrong = new ConcurrentLinkedQueue<>();
      var loop = threads.submit(() -> {
        for (int round = 0; querying.get() && wrong.isEmpty(); round++) {
          String outcome = switch (round % 3) {
            case 0 -> once(asker, "limit=1000", everyone);
            case 1 -> once(asker, "email=p3%40x&limit=1000", p3);
            default -> walk(asker, everyone);
          };
          if (outcome == null) {
            complete.incrementAndGet();
            completeAt.add(System.currentTimeMillis());
          } else if (outcome.equals("503")) {
            unavailable.incrementAndGet();
          } else {
            wrong.add(outcome);
          }
        }
        return null;
      });

      // The rebalance: node 2 joins, then node 1 stops (SIGTERM: it leaves the group).
      long rebalanceFrom = System.currentTimeMillis();
      joining.start();
      awaitSpread(List.of(asker, leaving, joining), topic);
      leaving.stop();
      awaitSpread(List.of(asker, joining), topic);
      long rebalanceTo = System.currentTimeMillis();
      querying.set(false);
      loop.get(120, TimeUnit.SECONDS);
      long completeDuring = completeAt.stream().filter(t -> t >= rebalanceFrom && t <= rebalanceTo).count();
      LOG.info("during the rebalance ({} ms): {} complete answers ({} in all), {} 503", rebalanceTo - rebalanceFrom,
          completeDuring, complete.get(), unavailable.get());
      assertThat(wrong).as("answers that were neither the whole set nor 503").isEmpty();
      assertThat(completeDuring).as("complete answers during the rebalance (503: %d)", unavailable.get()).isPositive();
      // A join and a clean leave leave no partition without a node for long: node 0, which waits up to
      // 15 s, looks up again the owners of partitions a node could not answer for, instead of failing.
      assertThat(unavailable.get()).as("503 answers during a join and a clean leave, with http.forwardWaitMs 15 s")
          .isZero();

      // Node 2 keeps a warm copy of node 0's partitions (one standby replica, two nodes): once it has
      // read them all to their end, a stale query through it is answered from them, marked stale. (A
      // stale answer alone does not show that: a copy not read to its end yet is asked of its owner.)
      List<String> killedPartitions = claimed(joining, asker, topic);
      assertThat(killedPartitions).as("users partitions of node 0").isNotEmpty();
      awaitReadToEnd(joining, killedPartitions);
      awaitAnswer(joining, "stale=true&limit=1000", everyone, true);
      asker.kill();
      // Right after the kill, node 0's partitions have no live node: a stale query through node 2 is
      // answered from its warm copies, marked stale (node 2 takes them over seconds later, when node
      // 0's heartbeats have stopped long enough).
      HttpResponse<String> stale = get(joining, "/v1/users?stale=true&limit=1000");
      assertThat(stale.statusCode()).as("stale query with node 0 killed: %s", stale.body()).isEqualTo(200);
      assertThat(keys(stale.body())).as("stale query with node 0 killed").containsExactlyElementsOf(everyone);
      assertThat(stale.headers().firstValue("Kfold-Stale")).as("stale query with node 0 killed").hasValue("true");
      // A query that is not stale waits 1 s for an owner: it answers 503 naming node 0's partitions if
      // node 2 has not taken them over yet, else every user; never the users of its own partitions alone.
      HttpResponse<String> current = get(joining, "/v1/users?limit=1000");
      if (current.statusCode() == 503) {
        assertThat(current.headers().firstValue("content-type")).hasValue("application/problem+json");
        assertThat(Envelopes.parse(current.body().getBytes(StandardCharsets.UTF_8)).path("detail").asText())
            .as("the 503's detail").contains(killedPartitions.get(0));
      } else {
        assertThat(current.statusCode()).as("query with node 0 killed: %s", current.body()).isEqualTo(200);
        assertThat(keys(current.body())).as("query with node 0 killed").containsExactlyElementsOf(everyone);
      }
    } finally {
      querying.set(false);
      threads.shutdownNow();
      for (KfoldProcess node : nodes) {
        node.stopIfAlive();
      }
    }
  }

  /** Null when the query answered exactly {@code expected}, "503" for a 503 problem, else what was wrong. */
  private String once(KfoldProcess node, String query, List<String> expected) throws Exception {
    HttpResponse<String> answer = get(node, "/v1/users?" + query);
    if (answer.statusCode() == 503 && answer.headers().firstValue("content-type").orElse("")
        .equals("application/problem+json")) {
      return "503";
    }
    if (answer.statusCode() != 200) {
      return query + ": " + answer.statusCode() + " " + answer.body();
    }
    List<String> keys = keys(answer.body());
    return keys.equals(expected) ? null : query + ": " + keys.size() + " items, not " + expected.size() + ": " + keys;
  }

  /** Walks every page of the list of all users; "503" as soon as a page answers 503. */
  private String walk(KfoldProcess node, List<String> expected) throws Exception {
    List<String> keys = new ArrayList<>();
    String after = null;
    for (int pages = 0; pages <= USERS; pages++) {
      String query = "limit=" + PAGE + (after == null ? "" : "&after=" + URLEncoder.encode(after, StandardCharsets.UTF_8));
      HttpResponse<String> answer = get(node, "/v1/users?" + query);
      if (answer.statusCode() == 503) {
        return "503";
      }
      if (answer.statusCode() != 200) {
        return "walk, " + query + ": " + answer.statusCode() + " " + answer.body();
      }
      JsonNode page = Envelopes.parse(answer.body().getBytes(StandardCharsets.UTF_8));
      page.path("items").forEach(item -> keys.add(item.path("key").asText()));
      if (page.path("next").isNull()) {
        return keys.equals(expected) ? null : "walk at size " + PAGE + ": " + keys.size() + " keys, not "
            + expected.size() + ": " + keys;
      }
      after = page.path("next").asText();
    }
    return "walk at size " + PAGE + " did not end";
  }

  private HttpResponse<String> get(KfoldProcess node, String path) throws IOException, InterruptedException {
    return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + node.port() + path))
        .timeout(Duration.ofSeconds(60)).GET().build(), HttpResponse.BodyHandlers.ofString());
  }

  private static List<String> keys(String page) throws IOException {
    List<String> keys = new ArrayList<>();
    Envelopes.parse(page.getBytes(StandardCharsets.UTF_8)).path("items").forEach(i -> keys.add(i.path("key").asText()));
    return keys;
  }

  /** Waits until the query answers exactly {@code expected} (and, if asked, marked stale). */
  private void awaitAnswer(KfoldProcess node, String query, List<String> expected, boolean stale) throws Exception {
    long deadline = System.currentTimeMillis() + 60_000;
    String last = "none";
    while (System.currentTimeMillis() < deadline) {
      HttpResponse<String> answer = get(node, "/v1/users?" + query);
      if (answer.statusCode() == 200 && keys(answer.body()).equals(expected)
          && (!stale || answer.headers().firstValue("Kfold-Stale").orElse("").equals("true"))) {
        return;
      }
      last = answer.statusCode() + " " + answer.headers().firstValue("Kfold-Stale").orElse("not stale") + " "
          + (answer.statusCode() == 200 ? keys(answer.body()).size() + " items" : answer.body());
      Thread.sleep(100);
    }
    throw new AssertionError(query + " through the node on " + node.port() + " did not answer the expected "
        + expected.size() + " users within 60 s; last " + last);
  }

  /** Waits until {@code node} has read its standby copies of the events partitions to their end. */
  private static void awaitReadToEnd(KfoldProcess node, List<String> eventsPartitions) throws Exception {
    List<String> changelogs = eventsPartitions.stream().map(p -> p.replace(".events-", ".changelog-")).toList();
    long deadline = System.currentTimeMillis() + 60_000;
    while (true) {
      JsonNode cluster = cluster(node);
      List<String> readToEnd = new ArrayList<>();
      cluster.path("standbysReadToEnd").forEach(p -> readToEnd.add(p.asText()));
      if (readToEnd.containsAll(changelogs)) {
        return;
      }
      assertThat(System.currentTimeMillis()).as("the node on %d read its copies of %s to their end; it shows %s",
          node.port(), changelogs, cluster).isLessThan(deadline);
      Thread.sleep(100);
    }
  }

  /** The users partitions {@code owner} claims, as {@code node}'s directory shows them. */
  private static List<String> claimed(KfoldProcess node, KfoldProcess owner, String topic) throws IOException {
    List<String> partitions = new ArrayList<>();
    for (JsonNode claim : cluster(node).path("nodes")) {
      if (claim.path("url").asText().endsWith(":" + owner.port())) {
        claim.path("partitions").forEach(p -> {
          if (p.asText().startsWith(topic + "-")) {
            partitions.add(p.asText());
          }
        });
      }
    }
    return partitions;
  }

  private static JsonNode cluster(KfoldProcess node) throws IOException {
    return Envelopes.parse(node.get("/v1/_cluster").getBytes(StandardCharsets.UTF_8));
  }

  /**
   * Waits until every one of {@code nodes} sees exactly their claims, of one generation, each with
   * some partitions and together every users partition once, and each is ready (caught up on them).
   */
  private static void awaitSpread(List<KfoldProcess> nodes, String topic) throws Exception {
    long deadline = System.currentTimeMillis() + 90_000;
    for (KfoldProcess node : nodes) {
      while (!spread(node, nodes.size(), topic)) {
        assertThat(System.currentTimeMillis()).as("the users partitions spread over %d nodes; the node on %d sees %s",
            nodes.size(), node.port(), cluster(node)).isLessThan(deadline);
        Thread.sleep(100);
      }
      node.awaitStatus("/ready", 200);
    }
  }

  private static boolean spread(KfoldProcess node, int count, String topic) throws IOException {
    JsonNode claims = cluster(node).path("nodes");
    Set<Integer> generations = new HashSet<>();
    List<String> partitions = new ArrayList<>();
    int live = 0;
    for (JsonNode claim : claims) {
      if (!claim.path("status").asText().equals("live")) {
        continue;
      }
      live++;
      generations.add(claim.path("generation").asInt());
      if (claim.path("partitions").isEmpty()) {
        return false;
      }
      for (JsonNode partition : claim.path("partitions")) {
        if (partition.asText().startsWith(topic + "-")) {
          partitions.add(partition.asText());
        }
      }
    }
    return live == count && generations.size() == 1 && partitions.size() == 4 && new HashSet<>(partitions).size() == 4;
  }
}
