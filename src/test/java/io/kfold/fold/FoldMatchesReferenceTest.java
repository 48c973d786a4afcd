package io.kfold.fold;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.kfold.types.Envelopes;
import io.kfold.store.StoredEntity;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.WebClient;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Random;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A random log folded by kfold and by a reference fold written here, independently of kfold, from
 * the contract: the version rules, the rule that a command's later events apply only right after
 * its earlier ones, and RFC 7396 merge patches at any depth. Both must reach the same state and the
 * same history for every entity, and count the same duplicates and conflicts.
 */
@ExtendWith(TestBroker.class)
class FoldMatchesReferenceTest {

  private static final int ENTITIES = 3_000;
  private static final int EVENTS = 120_000;
  private static final long START_TIME = 1_700_000_000_000L;
  /** Few member names, so that patches often meet members that earlier ones set, at every depth. */
  private static final String[] NAMES = {"a", "b", "c", "d"};
  private static final JsonNodeFactory JSON = JsonNodeFactory.instance;
  private static final Logger LOG = LoggerFactory.getLogger(FoldMatchesReferenceTest.class);

  /** An entity as the reference folds it. */
  private static final class Reference {
    long version;
    String lastCommandId;
    JsonNode state = JSON.objectNode();
    /** The applied events as kfold must keep them, each with the index of its record. */
    final List<Applied> history = new ArrayList<>();
    int duplicates;
    int conflicts;
    /** Conflicts that the versions alone allow: a command's later event after another writer's event. */
    int chainConflicts;
  }

  /** An applied event as the history must hold it; an outside event's id is where the broker put its record. */
  private record Applied(ObjectNode event, int record, boolean outside) {}

  /** An event of the generated log, before it is written: its version (0 for none), command and payload. */
  private record Planned(long version, String commandId, int index, ObjectNode payload, boolean outside) {}

  @Test
  @DisplayName("a random stream of 120k events over 3k entities, with nested merge patches, multi-event commands that"
      + " race and outside events, folds to the same states and histories as a reference fold")
  void foldEqualsReference() throws Exception {
    String app = TestNodes.newApp("reference");
    NodeConfig config = TestNodes.config(app, TestNodes.tempDir("reference"));
    String topic = config.eventsTopic("users");
    Random random = new Random(42);
    Map<String, Reference> reference = new HashMap<>();
    List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>(EVENTS + 8);
    int steps = 0;
    while (records.size() < EVENTS) {
      String key = "user-" + random.nextInt(ENTITIES);
      Reference ref = reference.computeIfAbsent(key, k -> new Reference());
      List<Planned> planned = plan(random, ref, "c" + steps++);
      for (Planned event : planned) {
        int index = records.size();
        long time = START_TIME + index;
        byte[] value;
        ObjectNode stored = JSON.objectNode();  // the event as the history must hold it, but its version
        if (event.outside()) {
          value = Envelopes.toBytes(event.payload());  // an outside producer: no envelope, no version
          stored.put("type", "external").put("entity", "users").put("key", key)
              .put("time", Instant.ofEpochMilli(time).toString()).set("payload", event.payload());
        } else {
          ObjectNode envelope = JSON.objectNode().put("id", "e" + index).put("type", "Changed");
          if (event.version() > 0) {
            envelope.put("version", event.version());
          }
          envelope.put("time", Instant.ofEpochMilli(time).toString()).set("payload", event.payload());
          if (event.commandId() != null) {
            envelope.putObject("meta").put("commandId", event.commandId()).put("index", event.index());
          }
          value = Envelopes.toBytes(envelope);
          stored.put("id", "e" + index).put("type", "Changed").put("entity", "users").put("key", key)
              .put("time", envelope.get("time").asText()).set("payload", event.payload());
          if (event.commandId() != null) {
            stored.set("meta", envelope.get("meta"));
          }
        }
        fold(ref, event, stored, index);
        records.add(new ProducerRecord<>(topic, null, time, key.getBytes(StandardCharsets.UTF_8), value));
      }
    }

    long chainConflicts = reference.values().stream().mapToLong(r -> r.chainConflicts).sum();
    LOG.info("{} records in {} steps; the reference applies {}, skips {} duplicates and rejects {} conflicts, {} of"
            + " them by the command-chain rule alone", records.size(), steps,
        reference.values().stream().mapToLong(r -> r.version).sum(),
        reference.values().stream().mapToLong(r -> r.duplicates).sum(),
        reference.values().stream().mapToLong(r -> r.conflicts).sum(), chainConflicts);
    // The log must exercise the rule, or the comparison below could not see it broken.
    assertThat(chainConflicts).as("events rejected by the command-chain rule alone").isGreaterThan(100);

    Vertx vertx = Vertx.vertx();
    WebClient client = WebClient.create(vertx);
    NodeRuntime node = NodeRuntime.start(vertx, config).await(60, TimeUnit.SECONDS);
    try {
      List<Future<RecordMetadata>> sent = new ArrayList<>(records.size());
      try (KafkaProducer<byte[], byte[]> producer = TestNodes.plainProducer()) {
        records.forEach(record -> sent.add(producer.send(record)));
      }
      TestNodes.awaitCaughtUp(node);
      long deadline = System.currentTimeMillis() + 60_000;
      long expectedApplied = reference.values().stream().mapToLong(r -> r.version).sum();
      while (node.progress().applied.sum() < expectedApplied && System.currentTimeMillis() < deadline) {
        Thread.sleep(50);
      }
      TestNodes.awaitCaughtUp(node);

      for (Map.Entry<String, Reference> entry : reference.entrySet()) {
        String key = entry.getKey();
        Reference ref = entry.getValue();
        StoredEntity stored = node.store().get("users", key);
        assertThat(stored).as(key).isNotNull();
        assertThat(stored.version()).as("version of " + key).isEqualTo(ref.version);
        assertThat(Envelopes.parse(stored.state())).as("state of " + key).isEqualTo(normalized(ref.state));

        List<JsonNode> expected = new ArrayList<>();
        for (Applied applied : ref.history) {
          if (applied.outside()) {
            RecordMetadata where = sent.get(applied.record()).get();
            applied.event().put("id", topic + "-" + where.partition() + "-" + where.offset());
          }
          expected.add(normalized(applied.event()));
        }
        assertThat(history(client, node.httpPort(), key)).as("history of " + key).containsExactlyElementsOf(expected);
      }
      assertThat(node.progress().applied.sum()).isEqualTo(expectedApplied);
      assertThat(node.progress().duplicates.sum())
          .isEqualTo(reference.values().stream().mapToLong(r -> r.duplicates).sum());
      assertThat(node.progress().conflicts.sum())
          .isEqualTo(reference.values().stream().mapToLong(r -> r.conflicts).sum());
    } finally {
      client.close();
      node.stop().await(60, TimeUnit.SECONDS);
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  /**
   * The events of one step of the log for an entity: a single event (from an outside producer, a
   * duplicate, a gap or the next version), one command of several events written from a version the
   * writer saw (current, stale or ahead; with or without versions), or two writers racing from the
   * same version, their events interleaved in the log.
   */
  private static List<Planned> plan(Random random, Reference ref, String commandId) {
    int kind = random.nextInt(100);
    if (kind < 55) {
      return List.of(single(random, ref));
    }
    if (kind < 80) {
      long base = ref.version;
      int choice = random.nextInt(10);
      if (choice == 0 && ref.version > 0) {
        base = random.nextInt((int) ref.version);  // a stale writer
      } else if (choice == 1) {
        base = ref.version + 1 + random.nextInt(2);  // ahead: a gap
      }
      return command(random, commandId, base);
    }
    List<Planned> first = command(random, commandId + "a", ref.version);
    List<Planned> second = random.nextInt(3) == 0 ? List.of(single(random, ref)) : command(random, commandId + "b",
        ref.version);
    List<Planned> interleaved = new ArrayList<>();
    int i = 0;
    int j = 0;
    while (i < first.size() || j < second.size()) {
      boolean fromFirst = j == second.size() || (i < first.size() && random.nextBoolean());
      interleaved.add(fromFirst ? first.get(i++) : second.get(j++));
    }
    return interleaved;
  }

  private static Planned single(Random random, Reference ref) {
    int kind = random.nextInt(100);
    if (kind < 15) {
      return new Planned(0, null, 0, patch(random, 3), true);
    }
    long version;
    if (kind < 22 && ref.version > 0) {
      version = 1 + random.nextInt((int) ref.version);  // a duplicate of an earlier version
    } else if (kind < 26) {
      version = ref.version + 2 + random.nextInt(3);  // a gap: a conflict
    } else {
      version = ref.version + 1;
    }
    return new Planned(version, null, 0, patch(random, 3), false);
  }

  /** A command of 2 to 4 events written from version {@code base}; a quarter leave the versions out. */
  private static List<Planned> command(Random random, String commandId, long base) {
    int size = 2 + random.nextInt(3);
    boolean versioned = random.nextInt(4) != 0;
    List<Planned> events = new ArrayList<>(size);
    for (int index = 0; index < size; index++) {
      events.add(new Planned(versioned ? base + 1 + index : 0, commandId, index, patch(random, 3), false));
    }
    return events;
  }

  /** A random merge patch: members set to scalars, arrays or nested patches, or removed with null. */
  private static ObjectNode patch(Random random, int depth) {
    ObjectNode patch = JSON.objectNode();
    int members = 1 + random.nextInt(3);
    for (int i = 0; i < members; i++) {
      String name = NAMES[random.nextInt(NAMES.length)];
      int kind = random.nextInt(depth > 0 ? 10 : 6);
      switch (kind) {
        case 0, 1 -> patch.put(name, random.nextInt(1000));
        case 2 -> patch.put(name, "s" + random.nextInt(50));
        case 3 -> patch.putNull(name);
        case 4 -> {
          // An array replaces as a whole, nulls and objects in it included.
          ArrayNode array = patch.putArray(name).add(random.nextInt(10)).addNull();
          array.addObject().putNull("x");
        }
        case 5 -> patch.put(name, random.nextBoolean());
        default -> patch.set(name, patch(random, depth - 1));
      }
    }
    return patch;
  }

  /** The reference's fold of one event: the version rules, the command-chain rule, RFC 7396. */
  private static void fold(Reference ref, Planned event, ObjectNode stored, int record) {
    long version = event.version() == 0 ? ref.version + 1 : event.version();
    if (version <= ref.version) {
      ref.duplicates++;
      return;
    }
    boolean chainBroken = event.index() > 0 && !Objects.equals(event.commandId(), ref.lastCommandId);
    if (version > ref.version + 1 || chainBroken) {
      ref.conflicts++;
      ref.chainConflicts += version == ref.version + 1 ? 1 : 0;
      return;
    }
    ref.version = version;
    ref.lastCommandId = event.commandId();
    ref.state = mergePatch(ref.state, event.payload());
    stored.put("version", version);
    ref.history.add(new Applied(stored, record, event.outside()));
  }

  /** RFC 7396, section 2, as the RFC writes it; the target is not modified. */
  private static JsonNode mergePatch(JsonNode target, JsonNode patch) {
    if (!patch.isObject()) {
      return patch;
    }
    ObjectNode result = target != null && target.isObject() ? ((ObjectNode) target).deepCopy() : JSON.objectNode();
    patch.fields().forEachRemaining(member -> {
      if (member.getValue().isNull()) {
        result.remove(member.getKey());
      } else {
        result.set(member.getKey(), mergePatch(result.get(member.getKey()), member.getValue()));
      }
    });
    return result;
  }

  /** The node as JSON text would read it back, so that number node kinds compare equal. */
  private static JsonNode normalized(JsonNode node) throws Exception {
    return Envelopes.parse(Envelopes.toBytes(node));
  }

  /** The entity's whole history as the HTTP API answers it, page by page. */
  private static List<JsonNode> history(WebClient client, int port, String key) throws Exception {
    List<JsonNode> events = new ArrayList<>();
    int limit = 1000;
    while (true) {
      Reply reply = TestNodes.call(client, HttpMethod.GET, port,
          "/v1/users/" + key + "/events?fromVersion=" + (events.size() + 1) + "&limit=" + limit, null, Map.of());
      assertThat(reply.status()).as("history of %s", key).isEqualTo(200);
      JsonNode page = reply.body().path("events");
      page.forEach(events::add);
      if (page.size() < limit) {
        return events;
      }
    }
  }
}
