package io.kfold.fold;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.config.NodeConfig;
import io.kfold.RunningNode;
import io.kfold.TestBroker;
import io.kfold.TestLog;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.kfold.entity.EntityType;
import io.kfold.entity.Envelope;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.header.Header;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.StreamSupport;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Every kind of record the fold cannot apply goes to the dead-letter topic as it was, with headers
 * that name exactly where it came from, and the fold goes on with the records after it.
 */
@ExtendWith(TestBroker.class)
class DeadLetterTest {

  /** Counts its events and keeps the last payload; an event whose payload says "explode" makes apply throw. */
  public static final class Fragile implements EntityType {

    @Override
    public String name() {
      return "fragile";
    }

    @Override
    public JsonNode initialState() {
      return JsonNodeFactory.instance.objectNode().put("count", 0);
    }

    @Override
    public JsonNode apply(JsonNode state, Envelope event) {
      if (event.payload().path("explode").asBoolean()) {
        throw new IllegalStateException("a bug in apply");
      }
      ObjectNode next = JsonNodeFactory.instance.objectNode();
      next.put("count", state.path("count").asLong() + 1);
      next.set("last", event.payload());
      return next;
    }
  }

  /** A record written to the events topic: what was sent, and where the broker put it. */
  private record Sent(byte[] key, byte[] value, RecordMetadata metadata, String reason) {}

  @Test
  @DisplayName("a record with no key, a JSON value that is not an object and an event whose apply throws each go to the"
      + " dead-letter topic with the exact source topic, partition and offset, and the fold goes on")
  void undecodableAndFailingRecords() throws Exception {
    Path dir = TestNodes.tempDir("dlq-kinds");
    NodeConfig config = NodeConfig.load(TestNodes.withSection(TestNodes.env(TestNodes.newApp("dlq-kinds"), dir), dir,
        "types", "- name: fragile\n  class: " + Fragile.class.getName() + "\n- name: users\n  fold: merge\n"
            + "- name: orders\n  class: io.kfold.example.Orders\n- name: shipments\n  fold: merge\n"));
    String topic = config.eventsTopic("fragile");
    try (RunningNode running = RunningNode.start(config);
         KafkaProducer<byte[], byte[]> producer = TestNodes.plainProducer()) {
      List<Sent> bad = new ArrayList<>();
      // Spread over the partitions, so that a header naming the wrong partition or offset shows.
      bad.add(send(producer, topic, 1, null, "{\"orphan\":1}", "no key"));
      bad.add(send(producer, topic, 3, "", "{\"orphan\":2}", "no key"));
      send(producer, topic, 1, "after-orphan", "{\"n\":1}", null);
      bad.add(send(producer, topic, 2, "array", "[1,2]", "not a JSON object"));
      bad.add(send(producer, topic, 3, "string", "\"x\"", "not a JSON object"));
      bad.add(send(producer, topic, 0, "number", "42", "not a JSON object"));
      send(producer, topic, 2, "array", "{\"n\":1}", null);
      send(producer, topic, 3, "string", "{\"n\":1}", null);
      send(producer, topic, 0, "number", "{\"n\":1}", null);
      send(producer, topic, 2, "throws", "{\"n\":1}", null);
      bad.add(send(producer, topic, 2, "throws", "{\"explode\":true}", "apply failed: java.lang.IllegalStateException: a bug in apply"));
      send(producer, topic, 2, "throws", "{\"n\":2}", null);

      // The fold goes on: each entity gets the good events after the bad ones, and only those.
      assertVersion(running, "after-orphan", 1, 1);
      assertVersion(running, "array", 1, 1);
      assertVersion(running, "string", 1, 1);
      assertVersion(running, "number", 1, 1);
      assertVersion(running, "throws", 2, 2);

      List<ConsumerRecord<byte[], byte[]>> letters = awaitDeadLetters(config.deadLetterTopic("fragile"), bad.size());
      assertThat(letters).as("dead letters").hasSize(bad.size());
      for (Sent sent : bad) {
        String value = new String(sent.value(), StandardCharsets.UTF_8);
        List<ConsumerRecord<byte[], byte[]>> matching = letters.stream()
            .filter(letter -> Arrays.equals(letter.value(), sent.value())).toList();
        assertThat(matching).as("dead letters of %s", value).hasSize(1);
        ConsumerRecord<byte[], byte[]> letter = matching.get(0);
        assertThat(letter.key()).as("key of the dead letter of %s", value).isEqualTo(sent.key());
        assertThat(header(letter, "kfold.source.topic")).as("source topic of %s", value).isEqualTo(topic);
        assertThat(header(letter, "kfold.source.partition")).as("source partition of %s", value)
            .isEqualTo(Integer.toString(sent.metadata().partition()));
        assertThat(header(letter, "kfold.source.offset")).as("source offset of %s", value)
            .isEqualTo(Long.toString(sent.metadata().offset()));
        assertThat(header(letter, "kfold.error")).as("error of %s", value).contains(sent.reason());
      }
      assertThat(running.node().progress().deadLettered.sum()).as("dead letters counted").isEqualTo(bad.size());
    }
  }

  private static Sent send(KafkaProducer<byte[], byte[]> producer, String topic, int partition, String key,
                           String value, String reason) throws Exception {
    byte[] keyBytes = key == null ? null : key.getBytes(StandardCharsets.UTF_8);
    byte[] valueBytes = value.getBytes(StandardCharsets.UTF_8);
    RecordMetadata metadata = producer.send(new ProducerRecord<>(topic, partition, keyBytes, valueBytes)).get();
    return new Sent(keyBytes, valueBytes, metadata, reason);
  }

  private static void assertVersion(RunningNode running, String key, long version, long count) throws Exception {
    Reply reply = running.get("/v1/fragile/" + key + "?minVersion=" + version + "&timeoutMs=10000");
    assertThat(reply.status()).as("%s reaches version %d", key, version).isEqualTo(200);
    assertThat(reply.body().path("version").asLong()).as("version of %s", key).isEqualTo(version);
    assertThat(reply.body().path("state").path("count").asLong()).as("events applied to %s", key).isEqualTo(count);
  }

  /** The dead-letter topic, once it holds {@code count} records (30 s at most). */
  private static List<ConsumerRecord<byte[], byte[]>> awaitDeadLetters(String topic, int count)
      throws InterruptedException {
    long deadline = System.currentTimeMillis() + 30_000;
    List<ConsumerRecord<byte[], byte[]>> letters = TestLog.committedRecords(topic);
    while (letters.size() < count && System.currentTimeMillis() < deadline) {
      Thread.sleep(100);
      letters = TestLog.committedRecords(topic);
    }
    return letters;
  }

  /** The value of the record's one header named {@code name}. */
  private static String header(ConsumerRecord<byte[], byte[]> record, String name) {
    List<Header> headers = StreamSupport.stream(record.headers().headers(name).spliterator(), false).toList();
    assertThat(headers).as("headers %s", name).hasSize(1);
    return new String(headers.get(0).value(), StandardCharsets.UTF_8);
  }
}
