package io.kfold.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.KfoldProcess;
import io.kfold.TestNodes;
import io.kfold.entity.Envelopes;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.net.URI;
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
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;

/**
 * What the cluster tests ask kfold processes over HTTP: commands retried until acknowledged, as a
 * careful caller does while nodes come and go; reads; and the partition claims of {@code /v1/_cluster}.
 */
final class ClusterClient {

  private static final Logger LOG = LoggerFactory.getLogger(ClusterClient.class);

  /** Partitions of all events topics together: three entity types of four partitions each. */
  static final int ALL_PARTITIONS = 12;

  /**
   * Three kfold processes of {@code app} (not started), each with a data folder of its own, logging
   * to {@code target/<name>-<app>-<i>.log}, with a session timeout of {@code sessionTimeoutMs}: their
   * members heartbeat every sixth of it, so the group hears of a newcomer or a dead node that soon.
   */
  static List<KfoldProcess> processes(String app, String name, int sessionTimeoutMs, Map<String, String> env)
      throws IOException {
    return processes(app, name, 3, sessionTimeoutMs, env);
  }

  /** As {@link #processes(String, String, int, Map)}, but {@code count} of them. */
  static List<KfoldProcess> processes(String app, String name, int count, int sessionTimeoutMs, Map<String, String> env)
      throws IOException {
    List<KfoldProcess> nodes = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      Map<String, String> nodeEnv = TestNodes.env(app, TestNodes.tempDir(name + "-" + i));
      nodeEnv.put("KFOLD_KAFKA_SESSION_TIMEOUT_MS", Integer.toString(sessionTimeoutMs));
      nodeEnv.putAll(env);
      nodes.add(new KfoldProcess(nodeEnv, Path.of("target", name + "-" + app + "-" + i + ".log")));
    }
    return nodes;
  }

  private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
  /** Answers that made {@link #command} try again, by status or exception. */
  private final Map<String, LongAdder> retried = new ConcurrentHashMap<>();

  /**
   * Sends a command to a node, retrying with the same idempotency key until it is acknowledged;
   * answers the body of the 200.
   */
  JsonNode command(int port, String order, String body, String idempotencyKey) throws Exception {
    return post(port, "/v1/orders/" + order + "/commands", body, idempotencyKey, Duration.ofSeconds(20));
  }

  /**
   * Posts a write to a node, retrying with the same idempotency key until it is acknowledged, each
   * attempt given up after {@code attemptTimeout}; answers the body of the 200.
   */
  JsonNode post(int port, String path, String body, String idempotencyKey, Duration attemptTimeout) throws Exception {
    long deadline = System.currentTimeMillis() + 60_000;
    String last = "none";
    while (System.currentTimeMillis() < deadline) {
      try {
        HttpResponse<String> response = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
            .timeout(attemptTimeout).header("Idempotency-Key", idempotencyKey)
            .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() == 200) {
          return Envelopes.parse(response.body().getBytes(StandardCharsets.UTF_8));
        }
        last = response.statusCode() + " " + response.body();
        retried.computeIfAbsent(Integer.toString(response.statusCode()), k -> new LongAdder()).increment();
        if (response.statusCode() != 503) {
          LOG.warn("{} through port {} answered {}; trying again", path, port, last);
        }
      } catch (IOException e) {
        last = e.toString();
        retried.computeIfAbsent(e.getClass().getSimpleName(), k -> new LongAdder()).increment();
      }
      Thread.sleep(100);
    }
    throw new AssertionError(path + " not acknowledged within 60 s; last answer " + last);
  }

  /** How many times {@link #command} tried again, by the status or exception that made it. */
  Map<String, Long> retried() {
    Map<String, Long> counts = new TreeMap<>();
    retried.forEach((answer, count) -> counts.put(answer, count.sum()));
    return counts;
  }

  static JsonNode get(KfoldProcess node, String path) throws IOException {
    return Envelopes.parse(node.get(path).getBytes(StandardCharsets.UTF_8));
  }

  /**
   * Whether the node's directory shows exactly {@code nodes} claims, all of one group generation,
   * each with some partitions, none claimed twice, all claimed.
   */
  static boolean spreadOver(KfoldProcess node, int nodes) throws IOException {
    JsonNode claims = get(node, "/v1/_cluster").path("nodes");
    if (claims.size() != nodes) {
      return false;
    }
    Set<Integer> generations = new HashSet<>();
    Set<String> claimed = new HashSet<>();
    int count = 0;
    for (JsonNode claim : claims) {
      if (claim.path("partitions").isEmpty()) {
        return false;
      }
      generations.add(claim.path("generation").asInt());
      for (JsonNode partition : claim.path("partitions")) {
        claimed.add(partition.asText());
        count++;
      }
    }
    return generations.size() == 1 && count == ALL_PARTITIONS && claimed.size() == ALL_PARTITIONS;
  }

  /** Waits until every one of {@code nodes} sees the partitions spread over all of them. */
  static void awaitSpread(List<KfoldProcess> nodes, Duration within) throws Exception {
    long deadline = System.currentTimeMillis() + within.toMillis();
    for (KfoldProcess node : nodes) {
      while (!spreadOver(node, nodes.size())) {
        if (System.currentTimeMillis() > deadline) {
          throw new AssertionError("the partitions did not spread over " + nodes.size() + " nodes within " + within
              + "; the node on port " + node.port() + " sees " + node.get("/v1/_cluster"));
        }
        Thread.sleep(200);
      }
    }
  }
}
