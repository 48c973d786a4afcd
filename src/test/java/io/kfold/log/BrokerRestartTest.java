package io.kfold.log;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.Await;
import io.kfold.TestNodes;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.types.Envelopes;
import io.vertx.core.Vertx;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BooleanSupplier;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The broker is killed under writes and comes back, on the same port and the same data: the node
 * says NOT_READY while it is gone and READY once it is back and caught up, writes that cannot be
 * appended get a clear error instead of hanging, writes resume, and every acknowledged write is in
 * its entity's history exactly once. The broker is this class's own (the shared test broker cannot
 * be stopped under other tests). How long the node took to recover is printed, not asserted.
 */
class BrokerRestartTest {

  private static final Logger LOG = LoggerFactory.getLogger(BrokerRestartTest.class);
  private static final int WRITERS = 4;
  /** Short, so that writes fail within the outage; the default is 10 s. */
  private static final int WRITE_TIMEOUT_MS = 3000;
  /** How long the test's HTTP client waits for any answer: past it, a write hangs. */
  private static final Duration HANG = Duration.ofMillis(WRITE_TIMEOUT_MS + 5000);

  private static Path brokerDir;
  private static LocalBroker broker;

  @BeforeAll
  static void startBroker() throws Exception {
    brokerDir = TestNodes.tempDir("restarted-broker");
    broker = LocalBroker.start(brokerDir, LocalBroker.defaultLibs(), 0);
  }

  @AfterAll
  static void stopBroker() {
    if (broker != null) {
      broker.close();
    }
  }

  /** One write as the writer saw it: when it started and ended (ms since the epoch), and its answer. */
  record Attempt(String entity, int seq, long start, long end, int status, String contentType, String detail) {}

  @Test
  @DisplayName("while the broker is gone /ready is 503 and writes fail clearly; once it is back writes resume and /ready is 200; nothing is lost or doubled")
  void resumesAfterABrokerRestart() throws Exception {
    String app = TestNodes.newApp("broker-restart");
    Map<String, String> env = new HashMap<>();
    env.put("KFOLD_APP", app);
    env.put("KFOLD_DATA_DIR", TestNodes.tempDir("broker-restart-node").toString());
    env.put("KFOLD_HTTP_PORT", "0");
    env.put("KFOLD_KAFKA_BOOTSTRAP", broker.bootstrap());
    env.put("KFOLD_WRITES_TIMEOUT_MS", Integer.toString(WRITE_TIMEOUT_MS));
    NodeConfig config = NodeConfig.load(env);
    Vertx vertx = Vertx.vertx();
    ExecutorService threads = Executors.newFixedThreadPool(WRITERS + 1);
    AtomicBoolean writing = new AtomicBoolean(true);
    ConcurrentLinkedQueue<Attempt> attempts = new ConcurrentLinkedQueue<>();
    // {asked, status, answered}: a probe asked before the kill may be answered after it
    ConcurrentLinkedQueue<long[]> readiness = new ConcurrentLinkedQueue<>();
    NodeRuntime node = TestNodes.startCaughtUp(vertx, config);
    HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
    String base = "http://127.0.0.1:" + node.httpPort();
    try {
      List<Future<Integer>> writers = new ArrayList<>();
      for (int w = 0; w < WRITERS; w++) {
        String entity = "writer-" + w;
        writers.add(threads.submit(() -> write(http, base, entity, writing, attempts)));
      }
      threads.submit(() -> {
        while (writing.get()) {
          long asked = System.currentTimeMillis();
          int status = ready(http, base).statusCode();
          readiness.add(new long[] {asked, status, System.currentTimeMillis()});
        }
        return null;
      });
      // Steady writes with the broker up: every entity acknowledged a few times, READY all along.
      await("writes acknowledged before the outage", () -> everyWriter(attempts, 0, 3));
      await("READY under steady writes", () -> readiness.stream().filter(r -> r[1] == 200).count() >= 20);
      long down = System.currentTimeMillis();
      // Killed, as a crashed broker or machine: no clean shutdown, the logs recovered on start.
      ProcessHandle killed = ProcessHandle.of(broker.pid()).orElseThrow();
      killed.destroyForcibly();
      killed.onExit().get(30, TimeUnit.SECONDS);
      LOG.info("broker killed");
      await("/ready says NOT_READY while the broker is gone", () -> readiness.stream().anyMatch(r -> r[0] > down && r[1] == 503));
      HttpResponse<String> notReady = ready(http, base);
      await("every writer saw a write fail during the outage", () -> everyWriterFailed(attempts, down));
      broker = LocalBroker.start(brokerDir, LocalBroker.defaultLibs(), 0);
      long back = System.currentTimeMillis();
      LOG.info("broker answers again");
      await("writes acknowledged after the broker came back", () -> everyWriter(attempts, back, 2));
      await("READY after the broker came back", () -> readiness.stream().anyMatch(r -> r[0] > back && r[1] == 200));
      writing.set(false);
      Map<String, Integer> lastSeq = new HashMap<>();
      for (int w = 0; w < WRITERS; w++) {
        lastSeq.put("writer-" + w, writers.get(w).get(60, TimeUnit.SECONDS));
      }

      attempts.stream().filter(a -> a.end() > down && a.start() < back + 10_000).forEach(a -> LOG.info(
          "attempt {} #{}: {} ms after the broker stopped, {} ms long, {} {}", a.entity(), a.seq(), a.start() - down,
          a.end() - a.start(), a.status(), a.status() == 200 ? "" : a.detail()));
      long firstWrite = attempts.stream().filter(a -> a.status() == 200 && a.end() > back).mapToLong(Attempt::end)
          .min().orElseThrow();
      long readyAgain = readiness.stream().filter(r -> r[0] > back && r[1] == 200).mapToLong(r -> r[2]).min().orElseThrow();
      long lastFailure = attempts.stream().filter(a -> a.status() != 200).mapToLong(Attempt::end).max().orElseThrow();
      LOG.info("MEASURED broker back -> first write acknowledged {} ms, -> READY {} ms, -> last failed write {} ms;"
          + " outage {} ms; attempts {} ({} failed)", firstWrite - back, readyAgain - back, lastFailure - back, back - down,
          attempts.size(), attempts.stream().filter(a -> a.status() != 200).count());

      assertThat(notReady.statusCode()).isEqualTo(503);
      JsonNode reason = Envelopes.parse(notReady.body().getBytes());
      assertThat(reason.path("status").asText()).isEqualTo("NOT_READY");
      assertThat(reason.path("broker").asText()).isEqualTo("unreachable");
      assertThat(reason.path("detail").asText()).as("the reason, in words").contains("does not answer");
      assertThat(readiness.stream().filter(r -> r[2] < down).map(r -> r[1]).distinct().toList())
          .as("/ready under steady writes, before the outage").containsOnly(200L);
      assertThat(attempts.stream().filter(a -> a.status() != 200).toList())
          .as("failed writes answer 503 or 504 as problem+json, none hangs")
          .allSatisfy(a -> {
            assertThat(a.status()).as(a.toString()).isIn(503, 504);
            assertThat(a.contentType()).as(a.toString()).startsWith("application/problem+json");
          });
      for (Map.Entry<String, Integer> writer : lastSeq.entrySet()) {
        assertThat(seqs(http, base, writer.getKey())).as("history of " + writer.getKey())
            .isEqualTo(java.util.stream.IntStream.rangeClosed(1, writer.getValue()).boxed().toList());
      }
    } finally {
      writing.set(false);
      threads.shutdownNow();
      node.stop().await(60, TimeUnit.SECONDS);
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  /**
   * Appends seq 1, 2, ... to the entity, each with an idempotency key of its own, retried with the
   * same key until acknowledged, as a careful caller does; answers the last seq acknowledged.
   */
  private static int write(HttpClient http, String base, String entity, AtomicBoolean writing,
                           ConcurrentLinkedQueue<Attempt> attempts) throws InterruptedException {
    int seq = 0;
    while (writing.get()) {
      seq++;
      String body = "{\"events\":[{\"type\":\"Noted\",\"payload\":{\"seq\":" + seq + "}}]}";
      HttpRequest request = HttpRequest.newBuilder(URI.create(base + "/v1/users/" + entity + "/events"))
          .timeout(HANG).header("Content-Type", "application/json").header("Idempotency-Key", entity + "-" + seq)
          .POST(HttpRequest.BodyPublishers.ofString(body)).build();
      while (true) {
        long start = System.currentTimeMillis();
        Attempt attempt;
        try {
          HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
          attempt = new Attempt(entity, seq, start, System.currentTimeMillis(), response.statusCode(),
              response.headers().firstValue("content-type").orElse(""), response.body());
        } catch (java.io.IOException e) {
          attempt = new Attempt(entity, seq, start, System.currentTimeMillis(), -1, "", e.toString());
        }
        attempts.add(attempt);
        if (attempt.status() == 200) {
          break;
        }
        Thread.sleep(50);  // a caller's pause before it retries, not a wait for anything
      }
    }
    return seq;
  }

  private static HttpResponse<String> ready(HttpClient http, String base) throws Exception {
    HttpResponse<String> response = http.send(HttpRequest.newBuilder(URI.create(base + "/ready")).timeout(HANG).build(),
        HttpResponse.BodyHandlers.ofString());
    Thread.sleep(100);  // a probe's period, not a wait for anything
    return response;
  }

  private static boolean everyWriter(ConcurrentLinkedQueue<Attempt> attempts, long since, int acknowledged) {
    Map<String, Long> count = new HashMap<>();
    attempts.stream().filter(a -> a.status() == 200 && a.start() >= since).forEach(a -> count.merge(a.entity(), 1L, Long::sum));
    return count.size() == WRITERS && count.values().stream().allMatch(c -> c >= acknowledged);
  }

  private static boolean everyWriterFailed(ConcurrentLinkedQueue<Attempt> attempts, long since) {
    return attempts.stream().filter(a -> a.status() != 200 && a.start() >= since).map(Attempt::entity).distinct().count()
        == WRITERS;
  }

  /** The seq of each event in the entity's history, oldest first, read page by page. */
  private static List<Integer> seqs(HttpClient http, String base, String entity) throws Exception {
    List<Integer> seqs = new ArrayList<>();
    while (true) {
      HttpResponse<String> response = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/users/" + entity
          + "/events?limit=1000&fromVersion=" + (seqs.size() + 1))).build(), HttpResponse.BodyHandlers.ofString());
      assertThat(response.statusCode()).isEqualTo(200);
      JsonNode events = Envelopes.parse(response.body().getBytes()).path("events");
      if (events.isEmpty()) {
        return seqs;
      }
      events.forEach(e -> seqs.add(e.path("payload").path("seq").asInt()));
    }
  }

  /** Waits for {@code condition}, then logs when it was seen: the test's figures are these lines' times. */
  private static void await(String what, BooleanSupplier condition) throws Exception {
    Await.until(what, Duration.ofSeconds(120), condition::getAsBoolean);
    LOG.info("seen: {}", what);
  }
}
