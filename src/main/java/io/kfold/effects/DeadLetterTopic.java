package io.kfold.effects;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.config.NodeConfig;
import io.kfold.types.Envelopes;
import io.kfold.log.KafkaConsumerLoop;
import io.kfold.log.KafkaClients;
import io.kfold.log.Supervisor;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.kafka.client.producer.KafkaWriteStream;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.function.Consumer;

/**
 * A worker's dead-letter topic, {@code <app>.effects.<worker>.dlq}, and the {@link ParkingLot} folded
 * from it, kept current on every node: a loop under the node's supervisor
 * ({@code effects.<worker>.parking}) reads the whole topic and hands each poll to the worker's event
 * loop, which applies it to the lot. A write completes only once the lot has read it back, so the
 * lot is never ahead of the topic nor different from another node's at the same offset.
 *
 * <p>Everything but the loop runs on the worker's event loop.
 */
final class DeadLetterTopic {

  private static final Logger LOG = LoggerFactory.getLogger(DeadLetterTopic.class);

  /** A promise kept once the lot has read every partition up to {@code offsets}. */
  private record Waiter(Map<TopicPartition, Long> offsets, Promise<Void> promise) {}

  private final Vertx vertx;
  private final Context context;
  private final NodeConfig config;
  private final String worker;
  private final String topic;
  private final Supervisor supervisor;
  private final Consumer<ParkingLot.Applied> listener;
  private final ParkingLot lot = new ParkingLot();
  /** How far the lot has read, per partition of the topic. */
  private final Map<TopicPartition, Long> read = new HashMap<>();
  private final List<Waiter> waiters = new ArrayList<>();
  /** Asked of the loop: what is the topic's end now? The lot catching up to it keeps the promise. */
  private final Queue<Promise<Void>> endsAsked = new ConcurrentLinkedQueue<>();
  private KafkaWriteStream<String, byte[]> producer;
  private Supervisor.Running reader;

  /** @param listener told, on the event loop, what each record meant for replay and skip requests */
  DeadLetterTopic(Vertx vertx, Context context, NodeConfig config, String worker, Supervisor supervisor,
                  Consumer<ParkingLot.Applied> listener) {
    this.vertx = vertx;
    this.context = context;
    this.config = config;
    this.worker = worker;
    this.topic = config.effectDeadLetterTopic(worker);
    this.supervisor = supervisor;
    this.listener = listener;
  }

  Future<Void> start() {
    return vertx.executeBlocking(() -> {
      producer = KafkaWriteStream.create(vertx, KafkaClients.producer(config.kafka(),
          config.effectGroup(worker) + "-dlq"), new StringSerializer(), new ByteArraySerializer());
      reader = supervisor.start("effects." + worker + ".parking", new Reader());
      return null;
    });
  }

  /** The lot as far as this node has read the topic. */
  ParkingLot lot() {
    return lot;
  }

  /** Writes a record about the entity; completes once the lot has read it back. */
  Future<Void> append(EntityRef entity, ObjectNode record) {
    return producer.send(new ProducerRecord<>(topic, entity.toString(), Envelopes.toBytes(record)))
        .compose(written -> awaitRead(Map.of(new TopicPartition(topic, written.partition()), written.offset() + 1)));
  }

  /** Completes once the lot has read everything the topic holds now. */
  Future<Void> caughtUp() {
    Promise<Void> promise = Promise.promise();
    endsAsked.add(promise);
    return promise.future();
  }

  Future<Void> stop() {
    return vertx.executeBlocking(() -> {
      if (reader != null) {
        reader.stop(Duration.ofSeconds(15));
      }
      return null;
    }).eventually(() -> producer == null ? Future.succeededFuture() : producer.close()).mapEmpty();
  }

  private Future<Void> awaitRead(Map<TopicPartition, Long> offsets) {
    Promise<Void> promise = Promise.promise();
    waiters.add(new Waiter(offsets, promise));
    keepPromises();
    return promise.future();
  }

  /** On the event loop: applies a poll of the topic, then keeps the promises it reached. */
  private void apply(ConsumerRecords<String, byte[]> records, Map<TopicPartition, Long> positions) {
    for (ConsumerRecord<String, byte[]> record : records) {
      JsonNode json;
      try {
        json = Envelopes.parse(record.value());
      } catch (IOException | RuntimeException e) {
        LOG.warn("effect worker {}: skipping an unreadable record of {} at {}-{}: {}", worker, topic, record.partition(),
            record.offset(), e.toString());
        continue;
      }
      lot.apply(record.key(), json).ifPresent(listener);
    }
    read.putAll(positions);
    keepPromises();
  }

  private void keepPromises() {
    List<Waiter> reached = waiters.stream().filter(w -> w.offsets().entrySet().stream()
        .allMatch(offset -> read.getOrDefault(offset.getKey(), 0L) >= offset.getValue())).toList();
    waiters.removeAll(reached);
    reached.forEach(w -> w.promise().complete());
  }

  /**
   * Reads the whole topic, each partition from where the lot stands: from the beginning at first,
   * and after a restart from what it had handed over, since the lot on the event loop keeps it.
   */
  private final class Reader extends KafkaConsumerLoop<String, byte[]> {
    private final Map<TopicPartition, Long> handedOver = new HashMap<>();
    private List<TopicPartition> partitions = List.of();

    @Override
    public void open() {
      consumer = new KafkaConsumer<>(KafkaClients.logReader(config.kafka(), topic + "-reader", 200),
          new StringDeserializer(), new ByteArrayDeserializer());
      partitions = consumer.partitionsFor(topic, Duration.ofSeconds(30)).stream()
          .map(p -> new TopicPartition(topic, p.partition())).toList();
      consumer.assign(partitions);
      for (TopicPartition partition : partitions) {
        Long position = handedOver.get(partition);
        if (position == null) {
          consumer.seekToBeginning(List.of(partition));
        } else {
          consumer.seek(partition, position);
        }
      }
    }

    @Override
    public void runOnce() {
      answerEndsAsked();
      ConsumerRecords<String, byte[]> records = consumer.poll(Duration.ofMillis(100));
      Map<TopicPartition, Long> positions = new HashMap<>();
      partitions.forEach(p -> positions.put(p, consumer.position(p)));
      if (!records.isEmpty() || !positions.equals(handedOver)) {
        handedOver.putAll(positions);
        context.runOnContext(v -> apply(records, positions));
      }
    }

    /** Each promise waits for the end offsets as they are now; a failed lookup leaves them for the next round. */
    private void answerEndsAsked() {
      List<Promise<Void>> asked = new ArrayList<>();
      for (Promise<Void> promise; (promise = endsAsked.poll()) != null; ) {
        asked.add(promise);
      }
      if (asked.isEmpty()) {
        return;
      }
      Map<TopicPartition, Long> ends;
      try {
        ends = consumer.endOffsets(partitions, Duration.ofSeconds(30));
      } catch (RuntimeException e) {
        endsAsked.addAll(asked);
        throw e;
      }
      context.runOnContext(v -> asked.forEach(promise -> awaitRead(ends).onComplete(promise)));
    }

    @Override
    public void close(boolean stopping) {
      closeConsumer(Duration.ofSeconds(5));
    }
  }
}
