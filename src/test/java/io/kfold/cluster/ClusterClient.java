package io.kfold.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.KfoldProcess;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.types.Envelopes;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.utils.Utils;
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
import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;

/**
 * What the cluster tests ask kfold processes over HTTP: commands retried until acknowledged, as a
 * careful caller does while nodes come and go; writes retried only when their outcome is unknown,
 * their answers kept byte for byte; reads; and the partition claims of {@code /v1/_cluster}.
 */
final class ClusterClient {

  private static final Logger LOG = LoggerFactory.getLogger(ClusterClient.class);

  /** Partitions of all events topics together: three entity types of four partitions each. */
  static final int ALL_PARTITIONS = TestNodes.SHIPPED_PARTITIONS;
  /** Partitions of each events topic. */
  static final int PARTITIONS_PER_TYPE = 4;

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
  /** Answers that made {@link #command}, {@link #post} or {@link #write} try again, by status or exception. */
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

  /**
   * How many times {@link #command}, {@link #post} or {@link #write} tried again, by the status or
   * exception that made it.
   */
  Map<String, Long> retried() {
    Map<String, Long> counts = new TreeMap<>();
    retried.forEach((answer, count) -> counts.put(answer, count.sum()));
    return counts;
  }

  /**
   * One answer to a write as it came over the wire: its status, ETag and body bytes; the port of
   * the node that gave it, and how many attempts it took.
   */
  record Reply(int status, String etag, byte[] body, int port, int attempts) {
    JsonNode json() throws IOException {
      return Envelopes.parse(body);
    }

    String text() {
      return new String(body, StandardCharsets.UTF_8);
    }

    /** Whether two answers are the same to a caller: status, ETag and body, byte for byte. */
    boolean sameAs(Reply other) {
      return status == other.status && java.util.Objects.equals(etag, other.etag)
          && java.util.Arrays.equals(body, other.body);
    }

    @Override
    public String toString() {
      return status + " ETag " + etag + " " + text();
    }
  }

  /** One attempt of a write with an idempotency key, whatever it answers; an I/O error is thrown. */
  Reply send(int port, String path, String body, String idempotencyKey, Duration timeout)
      throws IOException, InterruptedException {
    HttpResponse<byte[]> response = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
        .timeout(timeout).header("Idempotency-Key", idempotencyKey).header("content-type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofByteArray());
    return new Reply(response.statusCode(), response.headers().firstValue("ETag").orElse(null), response.body(), port, 1);
  }

  /**
   * Sends a write as a careful caller does when nodes may die: it tries again, always with the same
   * idempotency key, only when the outcome is unknown, that is on 503 or 504 or on no answer at all
   * (connection refused or reset, timed out), and after no answer it tries the next of {@code ports}.
   * Any other answer but 200 (a 409, 422, 500…) fails the test: a retry would hide it. Each retry
   * is counted in {@link #retried}, by status or exception.
   *
   * @param first the index in {@code ports} of the node asked first
   */
  Reply write(List<Integer> ports, int first, String path, String body, String idempotencyKey, Duration attemptTimeout)
      throws InterruptedException {
    long deadline = System.currentTimeMillis() + 90_000;
    int at = first;
    int attempts = 0;
    String last = "none";
    while (System.currentTimeMillis() < deadline) {
      attempts++;
      try {
        Reply reply = send(ports.get(at), path, body, idempotencyKey, attemptTimeout);
        if (reply.status() == 200) {
          return new Reply(200, reply.etag(), reply.body(), reply.port(), attempts);
        }
        if (reply.status() != 503 && reply.status() != 504) {
          throw new AssertionError(path + " with Idempotency-Key " + idempotencyKey + " through port " + ports.get(at)
              + " answered " + reply + " (attempt " + attempts + "): only 503 and 504 may be retried");
        }
        last = reply.toString();
        retried.computeIfAbsent(Integer.toString(reply.status()), k -> new LongAdder()).increment();
      } catch (IOException e) {
        last = e.toString();
        retried.computeIfAbsent(e.getClass().getSimpleName(), k -> new LongAdder()).increment();
        at = (at + 1) % ports.size();
      }
      Thread.sleep(100);
    }
    throw new AssertionError(path + " with Idempotency-Key " + idempotencyKey + " not acknowledged within 90 s; last"
        + " answer " + last);
  }

  /** What a test's writers tell while a node is killed under them. */
  interface Writers {
    /** Whether a writer has been answered for the write with this idempotency key. */
    boolean answered(String idempotencyKey);

    /** When the last answer came (epoch millis). */
    long lastAnswerAt();

    /** How many writes have been answered. */
    long answers();

    /** Throws the failure of a writer that stopped, if one did. */
    void check() throws Exception;
  }

  /**
   * A kill under writers: when it began and ended (epoch millis), and the writes the node had
   * appended that no writer had been answered for, by idempotency key, with their events' ids.
   */
  record Kill(long startedAt, long doneAt, Map<String, List<String>> appendedNotAnswered) {}

  /**
   * Kills {@code victim} (SIGKILL) at a moment when it has appended to {@code partitions} events of a
   * write that no writer has been answered for: the write is in flight, and only a retry can learn
   * its outcome. To find such a moment the victim is frozen (SIGSTOP) for a moment at a time and the
   * partitions read to their end; when every write it appended has been answered, it is thawed and
   * tried again once the writers went on. A freeze lasts well under the session timeout.
   */
  static Kill killWithWritesAppendedNotAnswered(KfoldProcess victim, Collection<TopicPartition> partitions,
                                                Writers writers) throws Exception {
    Map<String, List<String>> appended = new LinkedHashMap<>();
    try (KafkaConsumer<byte[], byte[]> tail = new KafkaConsumer<>(Map.of(
        ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, TestBroker.bootstrap(),
        ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest",
        ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class,
        ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class))) {
      tail.assign(partitions);
      for (int freeze = 1; freeze <= 50; freeze++) {
        victim.freeze();
        // Answers the victim sent before it stopped may still be on their way: wait until none comes.
        awaitWhileWriting("no answer for 100 ms", writers, Duration.ofSeconds(5),
            () -> System.currentTimeMillis() - writers.lastAnswerAt() > 100);
        Map<TopicPartition, Long> end = tail.endOffsets(partitions);
        while (partitions.stream().anyMatch(p -> tail.position(p) < end.get(p))) {
          for (ConsumerRecord<byte[], byte[]> record : tail.poll(Duration.ofMillis(100))) {
            JsonNode event = Envelopes.parse(record.value());
            String key = event.path("meta").path("idempotencyKey").asText(null);
            if (key != null) {
              appended.computeIfAbsent(key, k -> new ArrayList<>()).add(event.path("id").asText());
            }
          }
        }
        Map<String, List<String>> notAnswered = new LinkedHashMap<>(appended);
        notAnswered.keySet().removeIf(writers::answered);
        if (!notAnswered.isEmpty()) {
          long startedAt = System.currentTimeMillis();
          victim.kill();
          LOG.info("killed the node on port {} at freeze {}; appended by it and not answered: {}", victim.port(),
              freeze, notAnswered.keySet());
          return new Kill(startedAt, System.currentTimeMillis(), notAnswered);
        }
        victim.thaw();
        long before = writers.answers();
        awaitWhileWriting("the writers going on after a freeze", writers, Duration.ofSeconds(30),
            () -> writers.answers() > before + 5);
      }
    }
    throw new AssertionError("in 50 freezes, the node on port " + victim.port() + " never held a write appended and"
        + " not answered");
  }

  /** A condition that may need to ask a node or a broker. */
  interface Condition {
    boolean holds() throws Exception;
  }

  /** Waits until the condition holds; fails at once with a writer's failure, or when {@code within} passes. */
  static void awaitWhileWriting(String what, Writers writers, Duration within, Condition condition) throws Exception {
    long deadline = System.currentTimeMillis() + within.toMillis();
    while (!condition.holds()) {
      writers.check();
      if (System.currentTimeMillis() > deadline) {
        throw new AssertionError("not within " + within + ": " + what);
      }
      Thread.sleep(20);
    }
  }

  /** The events partition of an entity key, as Kafka's default partitioner places it. */
  static int partition(String key, int partitions) {
    return Utils.toPositive(Utils.murmur2(key.getBytes(StandardCharsets.UTF_8))) % partitions;
  }

  /** The partitions of {@code topic} a node claims to fold, as its own {@code /v1/_cluster} shows them. */
  static List<TopicPartition> partitionsOf(KfoldProcess node, String topic) throws IOException {
    JsonNode cluster = get(node, "/v1/_cluster");
    List<TopicPartition> partitions = new ArrayList<>();
    cluster.path("nodes").path(cluster.path("node").asText()).path("partitions").forEach(p -> {
      String name = p.asText();
      int dash = name.lastIndexOf('-');
      if (name.substring(0, dash).equals(topic)) {
        partitions.add(new TopicPartition(topic, Integer.parseInt(name.substring(dash + 1))));
      }
    });
    return partitions;
  }

  /** Whether an entity key lives in one of {@code partitions} of its type's events topic. */
  static boolean in(List<TopicPartition> partitions, String key) {
    return partitions.stream().anyMatch(p -> p.partition() == partition(key, PARTITIONS_PER_TYPE));
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

  /**
   * Stops the nodes still alive side by side, for clean-up: one after another, each stop is a leave
   * that hands the others its partitions, which they begin to take over only to be stopped next.
   */
  static void stopAll(Collection<KfoldProcess> nodes) throws Exception {
    ExecutorService stoppers = Executors.newFixedThreadPool(nodes.size());
    try {
      List<Future<?>> stopped = new ArrayList<>();
      for (KfoldProcess node : nodes) {
        stopped.add(stoppers.submit(() -> {
          node.stopIfAlive();
          return null;
        }));
      }
      for (Future<?> stop : stopped) {
        stop.get(150, TimeUnit.SECONDS);
      }
    } finally {
      stoppers.shutdownNow();
    }
  }

  /** Starts the nodes side by side, then waits until they share the partitions and are all ready. */
  static void startAll(List<KfoldProcess> nodes, ExecutorService threads) throws Exception {
    List<Future<?>> started = new ArrayList<>();
    for (KfoldProcess node : nodes) {
      started.add(threads.submit(() -> {
        node.start();
        return null;
      }));
    }
    for (Future<?> start : started) {
      start.get(150, TimeUnit.SECONDS);
    }
    ClusterClient.awaitSpread(nodes, Duration.ofSeconds(90));
    for (KfoldProcess node : nodes) {
      node.awaitStatus("/ready", 200);
    }
  }
}
