package io.kfold.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.KfoldProcess;
import io.kfold.TestBroker;
import io.kfold.TestLog;
import io.kfold.TestNodes;
import io.kfold.cluster.ClusterClient.Kill;
import io.kfold.cluster.ClusterClient.Reply;
import io.kfold.types.Envelopes;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Three kfold processes share the partitions; one is killed with SIGKILL while concurrent writers
 * have commands in flight on it, sent to it directly or forwarded to it by the others, some of them
 * appended to the log and not yet acknowledged. Its partitions move to the survivors, which go on
 * from their warm standby copies (one standby replica) or restore the stores from the changelogs
 * (none): the store handed over holds the {@value #PRELOAD} user events produced before the start.
 *
 * <p>The writers retry as a careful caller does, with the same idempotency key and only when the
 * outcome is unknown (503, 504, no answer). Afterwards the events topic itself is the judge: every
 * acknowledged command's event is there once and applied once, and each history and state is what
 * folding that log gives.
 */
@ExtendWith(TestBroker.class)
class FailoverTest {

  private static final Logger LOG = LoggerFactory.getLogger(FailoverTest.class);
  /**
   * Writers: each comments in turn on two orders of its own, one that the node to be killed folds
   * and one that another node folds.
   */
  private static final int WRITERS = 8;
  private static final int PRELOAD = 20_000;
  private static final int USERS = 2000;
  /** Acknowledged commands before the kill: ten a writer, so every writer has placed its orders and is commenting. */
  private static final int WARM_UP = 80;
  /** Comments sent after the kill and acknowledged, on each of the dead node's orders, that end the run. */
  private static final int AFTER_KILL = 3;
  private static final Duration ATTEMPT_TIMEOUT = Duration.ofSeconds(30);

  private final ClusterClient cluster = new ClusterClient();

  @ParameterizedTest(name = "{0} standby replicas")
  @ValueSource(ints = {0, 1})
  @DisplayName("kill -9 one of three nodes with commands in flight on it, some appended and not acknowledged: retried"
      + " only on 503, 504 or no answer, with the same key; its entities take writes again; every acknowledged"
      + " command is in the log and applied once; histories and states are the log's")
  void killOneOfThreeWithCommandsInFlight(int standbys) throws Exception {
    String app = TestNodes.newApp("failover");
    String ordersTopic = app + ".orders.events";
    // kfold's default session timeout: the survivors remove the dead node when its heartbeats stop.
    List<KfoldProcess> nodes = ClusterClient.processes(app, "failover", 45_000,
        Map.of("KFOLD_FOLD_STANDBY_REPLICAS", Integer.toString(standbys)));
    ExecutorService threads = Executors.newFixedThreadPool(WRITERS);
    Run run = new Run(nodes.stream().map(KfoldProcess::port).toList());
    try {
      ClusterClient.startAll(nodes, threads);
      preloadUsers(app);
      for (KfoldProcess node : nodes) {
        node.awaitStatus("/ready", 200);
      }
      LOG.info("three nodes ready, {} user events folded", PRELOAD);

      // The node to kill: the one that folds the most user partitions, so that the most state moves.
      Map<KfoldProcess, List<TopicPartition>> users = new HashMap<>();
      for (KfoldProcess node : nodes) {
        users.put(node, ClusterClient.partitionsOf(node, app + ".users.events"));
      }
      KfoldProcess victim = nodes.stream().max((a, b) -> Integer.compare(users.get(a).size(), users.get(b).size()))
          .orElseThrow();
      KfoldProcess survivor = nodes.stream().filter(n -> n != victim).findFirst().orElseThrow();
      List<TopicPartition> victimOrderPartitions = ClusterClient.partitionsOf(victim, ordersTopic);
      if (standbys == 0) {
        for (KfoldProcess node : nodes) {
          assertThat(ClusterClient.get(node, "/v1/_cluster").path("standbys")).as("warm copies with no standby replicas")
              .isEmpty();
        }
      }
      List<String> victimOrders = new ArrayList<>();
      List<String> otherOrders = new ArrayList<>();
      for (int o = 0; victimOrders.size() < WRITERS || otherOrders.size() < WRITERS; o++) {
        String order = "f" + o;
        List<String> list = ClusterClient.in(victimOrderPartitions, order) ? victimOrders : otherOrders;
        if (list.size() < WRITERS) {
          list.add(order);
        }
      }
      List<String> orders = new ArrayList<>(victimOrders);
      orders.addAll(otherOrders);
      for (int w = 0; w < WRITERS; w++) {
        int writer = w;
        List<String> own = List.of(victimOrders.get(w), otherOrders.get(w));
        run.writers.add(threads.submit(() -> run.write(writer, own, victimOrders)));
      }
      ClusterClient.awaitWhileWriting("the writers' first " + WARM_UP + " acknowledged commands", run,
          Duration.ofSeconds(60), () -> run.acknowledged.get() >= WARM_UP);
      run.kill = ClusterClient.killWithWritesAppendedNotAnswered(victim, victimOrderPartitions, run);
      ClusterClient.awaitWhileWriting(AFTER_KILL + " comments sent after the kill acknowledged on each of the dead"
              + " node's orders " + victimOrders, run, Duration.ofSeconds(120),
          () -> victimOrders.stream().allMatch(o -> run.sentAfterKill(o) >= AFTER_KILL));
      run.running = false;
      for (Future<?> writer : run.writers) {
        writer.get(120, TimeUnit.SECONDS);
      }

      LOG.info("failover with {} standby replicas ({} user events preloaded): {} commands acknowledged; {} were in"
              + " flight on the dead node's orders at the kill, {} of them decided (and appended) by it and acknowledged"
              + " after it died; the dead node's orders took writes again {} ms after the kill; retried: {}",
          standbys, PRELOAD, run.acknowledged.get(), run.inFlightAtKill.get(), run.decidedBeforeKill.get(),
          run.resumedAt.get() - run.kill.doneAt(), cluster.retried());
      assertThat(cluster.retried().keySet()).as("what made the writers retry: only 503, 504 and no answer")
          .allMatch(answer -> answer.equals("503") || answer.equals("504") || !answer.matches("\\d+"));
      assertThat(run.inFlightAtKill.get()).as("commands on the dead node's orders in flight when it was killed")
          .isPositive();
      for (Map.Entry<String, List<String>> appended : run.kill.appendedNotAnswered().entrySet()) {
        assertThat(run.answers.get(appended.getKey()).json().path("events").get(0).path("id").asText())
            .as("the event acknowledged after the kill for key %s, which the dead node had appended", appended.getKey())
            .isEqualTo(appended.getValue().get(0));
      }
      assertThat(run.decidedBeforeKill.get()).as("commands decided by the dead node, acknowledged after it died")
          .isGreaterThanOrEqualTo(run.kill.appendedNotAnswered().size());

      assertTheLogAgrees(ordersTopic, orders, run, survivor);
      assertUsersMoved(users.get(victim), survivor);
    } finally {
      run.running = false;
      threads.shutdownNow();
      ClusterClient.stopAll(nodes);
    }
  }

  /** What the writers share: what they were answered, and when, around the kill. */
  private final class Run implements ClusterClient.Writers {
    final List<Integer> ports;
    final List<Future<?>> writers = new ArrayList<>();
    /** Per order, the texts of its acknowledged comments in the order they were acknowledged (one writer per order). */
    final Map<String, List<String>> comments = new ConcurrentHashMap<>();
    /** Per idempotency key, the answer it got. */
    final Map<String, Reply> answers = new ConcurrentHashMap<>();
    /** Per order of the dead node, its comments sent after the kill and acknowledged. */
    final Map<String, AtomicInteger> afterKill = new ConcurrentHashMap<>();
    final AtomicLong acknowledged = new AtomicLong();
    final AtomicLong lastAnswer = new AtomicLong();
    final AtomicInteger inFlightAtKill = new AtomicInteger();
    final AtomicInteger decidedBeforeKill = new AtomicInteger();
    final AtomicLong resumedAt = new AtomicLong(Long.MAX_VALUE);
    volatile boolean running = true;
    volatile Kill kill;

    Run(List<Integer> ports) {
      this.ports = ports;
    }

    void place(String order) throws Exception {
      String key = "place-" + order;
      answers.put(key, cluster.write(ports, 0, "/v1/orders/" + order + "/commands", "{\"type\":\"place\",\"payload\":"
          + "{\"customerEmail\":\"a@b.c\",\"items\":[{\"sku\":\"x\",\"quantity\":1,\"price\":1}]}}", key, ATTEMPT_TIMEOUT));
      comments.put(order, new ArrayList<>());
    }

    /**
     * One writer: places its orders, then comments on them in turn, one at a time, through the node
     * that last answered it.
     */
    Void write(int writer, List<String> own, List<String> victimOrders) throws Exception {
      for (String order : own) {
        place(order);
      }
      int at = writer % ports.size();
      for (int n = 0; running; n++) {
        String order = own.get(n % own.size());
        String text = "w" + writer + "-" + n;
        long sent = System.currentTimeMillis();
        Reply reply = cluster.write(ports, at, "/v1/orders/" + order + "/commands",
            "{\"type\":\"comment\",\"payload\":{\"text\":\"" + text + "\"}}", text, ATTEMPT_TIMEOUT);
        long answered = System.currentTimeMillis();
        at = ports.indexOf(reply.port());
        answers.put(text, reply);
        comments.get(order).add(text);
        acknowledged.incrementAndGet();
        lastAnswer.set(answered);
        Kill done = kill;
        if (done != null && victimOrders.contains(order) && answered > done.doneAt()) {
          resumedAt.accumulateAndGet(answered, Math::min);
          if (sent > done.doneAt()) {
            afterKill.computeIfAbsent(order, o -> new AtomicInteger()).incrementAndGet();
          } else if (sent < done.startedAt()) {
            inFlightAtKill.incrementAndGet();
            // Decided before the kill, so by the dead node, which appended it; acknowledged by the new owner.
            Instant decided = Instant.parse(reply.json().path("events").get(0).path("time").asText());
            if (decided.toEpochMilli() < done.startedAt()) {
              decidedBeforeKill.incrementAndGet();
            }
          }
        }
      }
      return null;
    }

    int sentAfterKill(String order) {
      AtomicInteger count = afterKill.get(order);
      return count == null ? 0 : count.get();
    }

    @Override
    public boolean answered(String idempotencyKey) {
      return answers.containsKey(idempotencyKey);
    }

    @Override
    public long lastAnswerAt() {
      return lastAnswer.get();
    }

    @Override
    public long answers() {
      return acknowledged.get();
    }

    @Override
    public void check() throws Exception {
      for (Future<?> writer : writers) {
        if (writer.isDone()) {
          writer.get();  // throws the writer's failure
          if (running) {
            throw new AssertionError("a writer stopped");
          }
        }
      }
    }
  }

  /**
   * The events topic as it is, folded as the contract says (an event applies when its version is
   * the next one, and a command's later events only right after its earlier ones), gives each
   * order's history and state; every acknowledged command's event is in the topic once and in the
   * history once, as it was acknowledged; no idempotency key was applied twice.
   */
  private static void assertTheLogAgrees(String topic, List<String> orders, Run run, KfoldProcess node) throws Exception {
    Map<String, List<JsonNode>> log = new HashMap<>();
    Set<String> ids = new HashSet<>();
    for (ConsumerRecord<byte[], byte[]> record : TestLog.records(topic)) {
      JsonNode event = Envelopes.parse(record.value());
      assertThat(ids.add(event.path("id").asText())).as("event %s appended once", event.path("id").asText()).isTrue();
      log.computeIfAbsent(event.path("key").asText(), k -> new ArrayList<>()).add(event);
    }
    Map<String, JsonNode> appliedById = new HashMap<>();
    int notApplied = 0;
    for (String order : orders) {
      List<JsonNode> applied = new ArrayList<>();
      String lastCommand = null;
      for (JsonNode event : log.get(order)) {
        boolean next = event.path("version").asLong() == applied.size() + 1;
        boolean chained = event.path("meta").path("index").asInt() == 0
            || Objects.equals(event.path("meta").path("commandId").asText(), lastCommand);
        if (next && chained) {
          applied.add(event);
          lastCommand = event.path("meta").path("commandId").asText();
          appliedById.put(event.path("id").asText(), event);
        }
      }
      notApplied += log.get(order).size() - applied.size();

      JsonNode history = ClusterClient.get(node, "/v1/orders/" + order + "/events?limit=1000").path("events");
      assertThat(history).as("history of %s: its log folded", order).containsExactlyElementsOf(applied);
      List<String> texts = new ArrayList<>();
      Map<String, Integer> appliedByKey = new HashMap<>();
      for (JsonNode event : applied) {
        appliedByKey.merge(event.path("meta").path("idempotencyKey").asText(), 1, Integer::sum);
        if (event.path("type").asText().equals("OrderCommented")) {
          texts.add(event.path("payload").path("text").asText());
        }
      }
      assertThat(appliedByKey).as("events applied per idempotency key of %s: no command twice", order)
          .allSatisfy((key, count) -> assertThat(count).as(key).isEqualTo(1));
      assertThat(texts).as("comments of %s in the log applied twice", order).doesNotHaveDuplicates();
      assertThat(texts).as("comments of %s in the log: each acknowledged one, once, in order", order)
          .isEqualTo(run.comments.get(order));

      JsonNode state = ClusterClient.get(node, "/v1/orders/" + order);
      assertThat(state.path("version").asLong()).as("version of %s", order).isEqualTo(applied.size());
      List<String> stateComments = new ArrayList<>();
      state.path("state").path("comments").forEach(c -> stateComments.add(c.asText()));
      assertThat(stateComments).as("comments in the state of %s", order).isEqualTo(texts);
    }
    int copies = assertChangesPublished(topic.replace(".events", ".changes"), appliedById.values());
    for (Map.Entry<String, Reply> answer : run.answers.entrySet()) {
      JsonNode body = answer.getValue().json();
      JsonNode event = body.path("events").get(0);
      assertThat(appliedById.get(event.path("id").asText())).as("the event acknowledged for key %s, as applied",
          answer.getKey()).isEqualTo(event);
      assertThat(event.path("meta").path("idempotencyKey").asText()).isEqualTo(answer.getKey());
      assertThat(event.path("version").asLong()).isEqualTo(body.path("version").asLong());
    }
    LOG.info("{} events in the log of {} orders, {} of them not applied (their versions were taken); {} changes"
        + " published more than once", ids.size(), orders.size(), notApplied, copies);
  }

  /**
   * Downstream sees what was applied: a change for every applied event on the changes topic, as a
   * reader of committed records sees it, its copies (a change may be published again after a
   * failover) byte for byte alike, and no change of an event not applied. Waits for them: the dead
   * node's open transaction holds back what read-committed readers see of its partitions until the
   * broker aborts it. Answers how many copies beyond the first there are.
   */
  private static int assertChangesPublished(String topic, Collection<JsonNode> applied) throws Exception {
    Map<String, JsonNode> byId = new HashMap<>();
    applied.forEach(event -> byId.put(event.path("key").asText() + ":" + event.path("version").asLong(), event));
    long deadline = System.currentTimeMillis() + 60_000;
    while (true) {
      Map<String, List<byte[]>> changes = new HashMap<>();
      for (ConsumerRecord<byte[], byte[]> record : TestLog.committedRecords(topic)) {
        changes.computeIfAbsent(Envelopes.parse(record.value()).path("id").asText(), k -> new ArrayList<>())
            .add(record.value());
      }
      Set<String> missing = new HashSet<>(byId.keySet());
      missing.removeAll(changes.keySet());
      if (!missing.isEmpty() && System.currentTimeMillis() < deadline) {
        Thread.sleep(500);
        continue;
      }
      assertThat(missing).as("applied events without a change on %s after 60 s", topic).isEmpty();
      assertThat(changes.keySet()).as("changes on %s: those of the applied events", topic).isEqualTo(byId.keySet());
      int copies = 0;
      for (Map.Entry<String, List<byte[]>> change : changes.entrySet()) {
        byte[] first = change.getValue().get(0);
        assertThat(Envelopes.parse(first).path("event")).as("the event of change %s", change.getKey())
            .isEqualTo(byId.get(change.getKey()));
        for (byte[] copy : change.getValue()) {
          assertThat(copy).as("a copy of change %s", change.getKey()).isEqualTo(first);
        }
        copies += change.getValue().size() - 1;
      }
      return copies;
    }
  }

  /** Users of the dead node's partitions answer, through a survivor, the state their preloaded events give. */
  private static void assertUsersMoved(List<TopicPartition> victimPartitions, KfoldProcess node) throws Exception {
    int checked = 0;
    for (int u = 0; u < USERS; u += 7) {
      String user = "u" + u;
      if (ClusterClient.in(victimPartitions, user)) {
        JsonNode state = ClusterClient.get(node, "/v1/users/" + user);
        assertThat(state.path("version").asLong()).as("version of %s", user).isEqualTo(PRELOAD / USERS);
        assertThat(state.path("state").path("n").asInt()).as("last n of %s", user).isEqualTo(PRELOAD - USERS + u);
        assertThat(state.path("state").path("f" + u % 20).asText()).as("field of %s", user).isEqualTo("x".repeat(100));
        checked++;
      }
    }
    assertThat(checked).as("users of the dead node checked").isPositive();
  }

  /** User events as an outside producer writes them: {@value #PRELOAD} of them, to users {@code u<e % USERS>}. */
  private static void preloadUsers(String app) {
    try (KafkaProducer<byte[], byte[]> outside = TestNodes.plainProducer()) {
      for (int e = 0; e < PRELOAD; e++) {
        outside.send(new ProducerRecord<>(app + ".users.events", ("u" + e % USERS).getBytes(StandardCharsets.UTF_8),
            ("{\"n\":" + e + ",\"f" + e % 20 + "\":\"" + "x".repeat(100) + "\"}").getBytes(StandardCharsets.UTF_8)));
      }
    }
  }
}
