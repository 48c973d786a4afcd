package io.kfold.fold;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.KfoldConfig;
import io.kfold.KfoldNode;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.entity.Envelopes;
import io.kfold.store.StoredEntity;
import io.vertx.core.Vertx;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

@ExtendWith(TestBroker.class)
class FoldMatchesReferenceTest {

  private static final int ENTITIES = 3_000;
  private static final int EVENTS = 120_000;

  /** The reference: the version rules and RFC 7396 for flat payloads, written independently of kfold. */
  private static final class Reference {
    long version;
    final Map<String, JsonNode> fields = new HashMap<>();
    int duplicates;
    int conflicts;
  }

  @Test
  @DisplayName("a random stream of 120k events over 3k entities folds to the same states as a reference fold")
  void foldEqualsReference() throws Exception {
    String app = TestNodes.newApp("reference");
    KfoldConfig config = TestNodes.config(app, TestNodes.tempDir("reference"));
    Random random = new Random(42);
    Map<String, Reference> reference = new HashMap<>();
    List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>(EVENTS);
    for (int i = 0; i < EVENTS; i++) {
      String key = "user-" + random.nextInt(ENTITIES);
      Reference ref = reference.computeIfAbsent(key, k -> new Reference());
      ObjectNode payload = JsonNodeFactory.instance.objectNode();
      String field = "f" + random.nextInt(6);
      if (random.nextInt(10) == 0) {
        payload.putNull(field);
      } else {
        payload.put(field, random.nextInt(1000));
      }
      payload.put("seq", i);
      int kind = random.nextInt(100);
      long version;
      byte[] value;
      if (kind < 10) {
        value = Envelopes.toBytes(payload);  // outside producer: no envelope, no version
        version = ref.version + 1;
      } else {
        if (kind < 15 && ref.version > 0) {
          version = 1 + random.nextInt((int) ref.version);  // a duplicate of an earlier version
        } else if (kind < 18) {
          version = ref.version + 2 + random.nextInt(3);  // a gap: a conflict
        } else {
          version = ref.version + 1;
        }
        ObjectNode envelope = JsonNodeFactory.instance.objectNode();
        envelope.put("id", "e" + i);
        envelope.put("type", "Changed");
        envelope.put("version", version);
        envelope.set("payload", payload);
        value = Envelopes.toBytes(envelope);
      }
      if (version <= ref.version) {
        ref.duplicates++;
      } else if (version > ref.version + 1) {
        ref.conflicts++;
      } else {
        ref.version = version;
        payload.fields().forEachRemaining(m -> {
          if (m.getValue().isNull()) {
            ref.fields.remove(m.getKey());
          } else {
            ref.fields.put(m.getKey(), m.getValue());
          }
        });
      }
      records.add(new ProducerRecord<>(config.eventsTopic("users"), key.getBytes(StandardCharsets.UTF_8), value));
    }

    Vertx vertx = Vertx.vertx();
    KfoldNode node = KfoldNode.start(vertx, config).await(60, TimeUnit.SECONDS);
    try {
      try (KafkaProducer<byte[], byte[]> producer = TestNodes.plainProducer()) {
        records.forEach(producer::send);
      }
      TestNodes.awaitCaughtUp(node);
      long deadline = System.currentTimeMillis() + 60_000;
      long expectedApplied = reference.values().stream().mapToLong(r -> r.version).sum();
      while (node.progress().applied.sum() < expectedApplied && System.currentTimeMillis() < deadline) {
        Thread.sleep(50);
      }
      TestNodes.awaitCaughtUp(node);

      for (Map.Entry<String, Reference> entry : reference.entrySet()) {
        StoredEntity stored = node.store().get("users", entry.getKey());
        assertThat(stored).as(entry.getKey()).isNotNull();
        assertThat(stored.version()).as("version of " + entry.getKey()).isEqualTo(entry.getValue().version);
        ObjectNode expected = JsonNodeFactory.instance.objectNode();
        entry.getValue().fields.forEach(expected::set);
        assertThat(Envelopes.parse(stored.state())).as("state of " + entry.getKey()).isEqualTo(expected);
      }
      assertThat(node.progress().applied.sum()).isEqualTo(expectedApplied);
      assertThat(node.progress().duplicates.sum())
          .isEqualTo(reference.values().stream().mapToLong(r -> r.duplicates).sum());
      assertThat(node.progress().conflicts.sum())
          .isEqualTo(reference.values().stream().mapToLong(r -> r.conflicts).sum());
    } finally {
      node.stop().await(60, TimeUnit.SECONDS);
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }
}
