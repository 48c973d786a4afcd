package io.kfold.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.TextNode;
import io.kfold.KfoldProcess;
import io.kfold.TestBroker;
import io.kfold.TestLog;
import io.kfold.TestNodes;
import io.kfold.cluster.ClusterClient.Kill;
import io.kfold.cluster.ClusterClient.Reply;
import io.kfold.types.Envelopes;
import io.kfold.query.Position;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * An idempotency key's promise, held where it is hardest: the node that decided a write is killed
 * while the write is in flight, or two requests with the same key arrive at once. The answer to a
 * key is the first answer, byte for byte (status, ETag and body), whoever gives it, and the log
 * holds the key's events once.
 *
 * <p>The writes are appends of two events each, so that an answer rebuilt from the history must
 * get the range of versions right, with numbers ({@code 12.50}, {@code 1E+400}) that a careless
 * round trip would change.
 */
@ExtendWith(TestBroker.class)
class IdempotencyAfterCrashTest {

  private static final Logger LOG = LoggerFactory.getLogger(IdempotencyAfterCrashTest.class);
  private static final int WRITERS = 6;
  private static final Duration ATTEMPT_TIMEOUT = Duration.ofSeconds(30);

  private final ClusterClient cluster = new ClusterClient();

  @Test
  @DisplayName("kill -9 the deciding node with keyed writes in flight, some appended and not answered: the same key"
      + " on the other nodes answers byte for byte what the first answer was or would have been, and the log holds"
      + " each key's events once")
  void retryAfterTheDecidingNodeWasKilled() throws Exception {
    String app = TestNodes.newApp("idem-crash");
    String topic = app + ".users.events";
    // No standby copies: the new owner learns the keys from the changelog alone.
    List<KfoldProcess> nodes = ClusterClient.processes(app, "idem-crash", 6000, Map.of("KFOLD_FOLD_STANDBY_REPLICAS", "0"));
    ExecutorService threads = Executors.newFixedThreadPool(WRITERS);
    Writers writers = new Writers();
    try {
      ClusterClient.startAll(nodes, threads);
      KfoldProcess victim = nodes.get(2);
      List<TopicPartition> victimPartitions = ClusterClient.partitionsOf(victim, topic);
      List<String> users = new ArrayList<>();
      for (int u = 0; users.size() < WRITERS; u++) {
        if (ClusterClient.in(victimPartitions, "k" + u)) {
          users.add("k" + u);
        }
      }
      // Each writer appends to its own user through the node that folds it, until that node dies.
      for (int w = 0; w < WRITERS; w++) {
        String user = users.get(w);
        int writer = w;
        writers.running.add(threads.submit(() -> writers.write(victim.port(), writer, user)));
      }
      ClusterClient.awaitWhileWriting("60 answered writes", writers, Duration.ofSeconds(60),
          () -> writers.answered.size() >= 60);
      Kill kill = ClusterClient.killWithWritesAppendedNotAnswered(victim, victimPartitions, writers);
      for (Future<?> writer : writers.running) {
        writer.get(60, TimeUnit.SECONDS);
      }
      assertThat(writers.unknown).as("writes in flight at the kill").isNotEmpty();
      assertThat(writers.unknown.keySet()).as("writes in flight at the kill")
          .containsAll(kill.appendedNotAnswered().keySet());

      List<Integer> survivors = List.of(nodes.get(0).port(), nodes.get(1).port());
      // Writes whose outcome the kill hid: a retry on one survivor, then the same on the other.
      Map<String, Reply> retried = new LinkedHashMap<>();
      for (Map.Entry<String, String> write : writers.unknown.entrySet()) {
        String key = write.getKey();
        Reply first = cluster.write(survivors, 0, path(write.getValue()), body(key), key, ATTEMPT_TIMEOUT);
        Reply again = cluster.write(survivors, 1, path(write.getValue()), body(key), key, ATTEMPT_TIMEOUT);
        assertThat(again.text()).as("the answer to %s through the other survivor", key).isEqualTo(first.text());
        assertThat(again.sameAs(first)).as("status and ETag of %s alike: %s / %s", key, first, again).isTrue();
        retried.put(key, first);
      }
      // Writes answered before the kill: the same answer again, from whichever survivor now folds them.
      for (Map.Entry<String, Reply> answered : writers.answered.entrySet()) {
        String key = answered.getKey();
        for (int at = 0; at < survivors.size(); at++) {
          Reply again = cluster.write(survivors, at, path(writers.userOf.get(key)), body(key), key, ATTEMPT_TIMEOUT);
          assertThat(again.text()).as("the answer to %s after the kill, through port %d", key, survivors.get(at))
              .isEqualTo(answered.getValue().text());
          assertThat(again.sameAs(answered.getValue())).as("status and ETag of %s: %s / %s", key,
              answered.getValue(), again).isTrue();
        }
      }

      Map<String, List<ConsumerRecord<byte[], byte[]>>> log = byKey(topic);
      for (Map.Entry<String, Reply> answer : retried.entrySet()) {
        // The answer the dead node would have given: the key's events as they were appended.
        assertThat(answer.getValue().text()).as("the answer to %s: its events in the log", answer.getKey())
            .isEqualTo(expectedAnswer(writers.userOf.get(answer.getKey()), log.get(answer.getKey())));
      }
      for (Map.Entry<String, List<String>> appended : kill.appendedNotAnswered().entrySet()) {
        assertThat(eventIds(retried.get(appended.getKey()))).as("the events answered for %s,"
            + " which the dead node appended", appended.getKey()).isEqualTo(appended.getValue());
      }
      for (Map.Entry<String, Reply> answered : writers.answered.entrySet()) {
        assertThat(answered.getValue().text()).as("the answer to %s: its events in the log", answered.getKey())
            .isEqualTo(expectedAnswer(writers.userOf.get(answered.getKey()), log.get(answered.getKey())));
      }
      assertThat(writers.userOf.keySet()).as("the keys sent hold every key in the log").containsAll(log.keySet());
      LOG.info("{} writes answered before the kill and again after it; {} in flight at the kill ({} appended and not"
              + " answered), answered alike by both survivors; retried: {}", writers.answered.size(),
          writers.unknown.size(), kill.appendedNotAnswered().size(), cluster.retried());
    } finally {
      threads.shutdownNow();
      ClusterClient.stopAll(nodes);
    }
  }

  @Test
  @DisplayName("two requests with the same Idempotency-Key at once, to one node or to two: one decision, both answers"
      + " byte for byte alike, the events in the log once")
  void twoRequestsWithTheSameKeyAtOnce() throws Exception {
    String app = TestNodes.newApp("idem-same");
    List<KfoldProcess> nodes = ClusterClient.processes(app, "idem-same", 2, 10_000, Map.of());
    ExecutorService threads = Executors.newFixedThreadPool(2);
    try {
      ClusterClient.startAll(nodes, threads);
      List<Integer> ports = nodes.stream().map(KfoldProcess::port).toList();
      Map<String, Reply> answers = new LinkedHashMap<>();
      for (int round = 0; round < 24; round++) {
        // To the first node twice, to the second twice, then one to each; appends and commands.
        int[] to = switch (round % 3) {
          case 0 -> new int[] {0, 0};
          case 1 -> new int[] {1, 1};
          default -> new int[] {0, 1};
        };
        String key = "same-" + round;
        String path = round % 2 == 0 ? path("s" + round) : "/v1/orders/s" + round + "/commands";
        String body = round % 2 == 0 ? body(key) : "{\"type\":\"place\",\"payload\":{\"customerEmail\":\"a@b.c\","
            + "\"items\":[{\"sku\":\"x\",\"quantity\":3,\"price\":12.50}]}}";
        CountDownLatch ready = new CountDownLatch(2);
        List<Future<Reply>> sent = new ArrayList<>();
        for (int i : to) {
          sent.add(threads.submit(() -> {
            ready.countDown();
            ready.await();
            return cluster.write(ports, i, path, body, key, ATTEMPT_TIMEOUT);
          }));
        }
        Reply one = sent.get(0).get(60, TimeUnit.SECONDS);
        Reply other = sent.get(1).get(60, TimeUnit.SECONDS);
        assertThat(other.text()).as("the two answers to %s (ports %s)", key, List.of(ports.get(to[0]), ports.get(to[1])))
            .isEqualTo(one.text());
        assertThat(other.sameAs(one)).as("status and ETag of %s: %s / %s", key, one, other).isTrue();
        answers.put(key, one);
      }
      Map<String, List<ConsumerRecord<byte[], byte[]>>> log = byKey(app + ".users.events");
      log.putAll(byKey(app + ".orders.events"));
      for (Map.Entry<String, Reply> answer : answers.entrySet()) {
        String entity = answer.getValue().json().path("key").asText();
        assertThat(answer.getValue().text()).as("the answer to %s: its events in the log, once", answer.getKey())
            .isEqualTo(expectedAnswer(entity, log.get(answer.getKey())));
      }
      LOG.info("{} keys sent twice at once, answered alike; retried: {}", answers.size(), cluster.retried());
    } finally {
      threads.shutdownNow();
      ClusterClient.stopAll(nodes);
    }
  }

  /** The writers of the crash test: each appends to its user, once per key, through the node that folds it. */
  private final class Writers implements ClusterClient.Writers {
    final List<Future<?>> running = new ArrayList<>();
    /** Per key, the answer to its only attempt. */
    final Map<String, Reply> answered = new ConcurrentHashMap<>();
    /** Per key whose attempt got no answer (the node died), the user it was for. */
    final Map<String, String> unknown = new ConcurrentHashMap<>();
    final Map<String, String> userOf = new ConcurrentHashMap<>();
    final AtomicLong lastAnswer = new AtomicLong();

    /** Appends until the node stops answering; any answer but 200 fails. */
    Void write(int port, int writer, String user) throws Exception {
      for (int n = 0; ; n++) {
        String key = "w" + writer + "-" + n;
        userOf.put(key, user);
        Reply reply;
        try {
          reply = cluster.send(port, path(user), body(key), key, ATTEMPT_TIMEOUT);
        } catch (IOException noAnswer) {
          unknown.put(key, user);
          return null;
        }
        assertThat(reply.status()).as("append %s to %s: %s", key, user, reply).isEqualTo(200);
        answered.put(key, reply);
        lastAnswer.set(System.currentTimeMillis());
      }
    }

    @Override
    public boolean answered(String idempotencyKey) {
      return answered.containsKey(idempotencyKey);
    }

    @Override
    public long lastAnswerAt() {
      return lastAnswer.get();
    }

    @Override
    public long answers() {
      return answered.size();
    }

    @Override
    public void check() throws Exception {
      for (Future<?> writer : running) {
        if (writer.isDone()) {
          writer.get();  // throws the writer's failure
          throw new AssertionError("a writer stopped while the node it writes through was alive");
        }
      }
    }
  }

  private static List<String> eventIds(Reply reply) throws IOException {
    List<String> ids = new ArrayList<>();
    reply.json().path("events").forEach(e -> ids.add(e.path("id").asText()));
    return ids;
  }

  private static String path(String user) {
    return "/v1/users/" + user + "/events";
  }

  /** Two events, with numbers that must come back as they were written. */
  private static String body(String key) {
    return "{\"events\":[{\"type\":\"Noted\",\"payload\":{\"key\":\"" + key + "\",\"price\":12.50,\"big\":1E+400}},"
        + "{\"type\":\"Counted\",\"payload\":{\"nested\":{\"a\":[1,2.0,\"" + key + "\"]}}}]}";
  }

  /**
   * The answer to a write, made from its events as the events topic holds them: {@code {key,
   * version, events, position}} with the events' bytes as they are and the last one's position. The log must hold the write's events
   * once: those of one command, all with its key.
   */
  private static String expectedAnswer(String entity, List<ConsumerRecord<byte[], byte[]>> records) throws IOException {
    assertThat(records).as("events of the write to %s in the log", entity).isNotNull();
    Set<String> commands = new HashSet<>();
    List<String> events = new ArrayList<>();
    long version = 0;
    for (ConsumerRecord<byte[], byte[]> record : records) {
      JsonNode event = Envelopes.parse(record.value());
      commands.add(event.path("meta").path("commandId").asText());
      version = event.path("version").asLong();
      events.add(new String(record.value(), StandardCharsets.UTF_8));
    }
    assertThat(commands).as("commands in the log with the key of a write to %s: one decision", entity).hasSize(1);
    ConsumerRecord<byte[], byte[]> last = records.get(records.size() - 1);
    return "{\"key\":" + Envelopes.toText(TextNode.valueOf(entity)) + ",\"version\":" + version + ",\"events\":["
        + String.join(",", events) + "],\"position\":\"" + new Position(last.topic(), last.partition(), last.offset()).token()
        + "\"}";
  }

  /** The records of an events topic with an idempotency key, by key, in log order. */
  private static Map<String, List<ConsumerRecord<byte[], byte[]>>> byKey(String topic) throws IOException {
    Map<String, List<ConsumerRecord<byte[], byte[]>>> byKey = new HashMap<>();
    for (ConsumerRecord<byte[], byte[]> record : TestLog.records(topic)) {
      String key = Envelopes.parse(record.value()).path("meta").path("idempotencyKey").asText(null);
      if (key != null) {
        byKey.computeIfAbsent(key, k -> new ArrayList<>()).add(record);
      }
    }
    return byKey;
  }

}
