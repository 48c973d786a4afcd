package io.kfold.fold;

import io.kfold.KfoldConfig;
import io.kfold.entity.EntityTypes;
import io.kfold.log.KafkaClients;
import io.kfold.store.EntityStore;
import io.kfold.store.StoreBatch;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.buffer.Buffer;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RetriableException;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.SortedMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Folds the partitions of the events topics that the consumer group gives this node.
 *
 * <p>The consumer, the fold and the store writes run on one thread of their own, never an event
 * loop; nothing else touches the consumer. Each poll: fold it ({@link Fold}), write states, history,
 * outbox and next offsets in one store batch, publish the outbox, commit the offsets to Kafka for
 * lag tools, and publish each accepted change on the event bus ({@link #changesAddress}) as the
 * JSON of its change record in a {@code Buffer}. On assignment a partition resumes from the store's
 * offset, never Kafka's.
 */
public final class FoldVerticle extends VerticleBase {

  private static final Logger LOG = LoggerFactory.getLogger(FoldVerticle.class);

  private final KfoldConfig config;
  private final EntityStore store;
  private final FoldWatch watch;
  private final FoldProgress progress;
  private final Fold fold;

  private KafkaConsumer<byte[], byte[]> consumer;
  private KafkaProducer<String, byte[]> producer;
  /** Reads the last record of a changes partition when an outbox is published again. Fold thread only. */
  private KafkaConsumer<byte[], byte[]> tailReader;
  private Thread thread;
  private volatile boolean running = true;
  /** Per partition, the publishes not yet acknowledged, oldest first. Fold thread only. */
  private final Map<TopicPartition, ArrayDeque<Publish>> unacknowledged = new HashMap<>();
  /** Per partition, the source offset up to which the changes topic held changes when it was assigned. */
  private final Map<TopicPartition, Long> publishedUpTo = new HashMap<>();

  public FoldVerticle(KfoldConfig config, EntityTypes types, EntityStore store, FoldWatch watch,
                      FoldProgress progress) {
    this.config = config;
    this.store = store;
    this.watch = watch;
    this.progress = progress;
    this.fold = new Fold(config, types, store, progress);
  }

  @Override
  public Future<?> start() {
    return vertx.executeBlocking(() -> {
      String bootstrap = config.kafka().bootstrap();
      consumer = new KafkaConsumer<>(KafkaClients.foldConsumer(bootstrap, config.app(), config.kafka().groupInstanceId(),
          config.fold().maxPollRecords(), config.kafka().sessionTimeoutMs()));
      Map<String, Object> producerConf = KafkaClients.changePublisher(bootstrap, config.app() + "-fold-publisher");
      producer = new KafkaProducer<>(producerConf, new StringSerializer(), new ByteArraySerializer());
      tailReader = new KafkaConsumer<>(Map.of(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
          ConsumerConfig.CLIENT_ID_CONFIG, config.app() + "-fold-tail-reader", ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false),
          new ByteArrayDeserializer(), new ByteArrayDeserializer());
      thread = new Thread(this::run, "kfold-fold-" + config.app());
      thread.start();
      return null;
    });
  }

  @Override
  public Future<?> stop() {
    running = false;
    consumer.wakeup();
    return vertx.executeBlocking(() -> {
      thread.join(Duration.ofSeconds(60).toMillis());
      if (thread.isAlive()) {
        throw new IllegalStateException("the fold did not stop within 60 s");
      }
      return null;
    });
  }

  private void run() {
    try {
      consumer.subscribe(fold.topics(), new Rebalance());
      while (running) {
        ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(100));
        StoreBatch batch = new StoreBatch();
        clearAcknowledged(batch);
        if (records.isEmpty()) {
          if (!batch.isEmpty()) {
            store.write(batch);
          }
        } else {
          foldAndPublish(records, batch);
        }
        updateLag();
      }
    } catch (WakeupException e) {
      if (running) {
        fail(e);
      }
    } catch (RuntimeException e) {
      fail(e);
    } finally {
      close();
    }
  }

  private void foldAndPublish(ConsumerRecords<byte[], byte[]> records, StoreBatch batch) {
    Fold.Result result = fold.fold(records, batch);
    store.write(batch);
    progress.batches.increment();
    result.toPublish().forEach((partition, out) -> {
      long next = result.nextOffsets().get(partition);
      List<ProducerRecord<String, byte[]>> unpublished = notYetPublished(partition, out);
      if (unpublished.isEmpty() && !out.isEmpty()) {
        // Every change was published before: the outbox entries just written can go, in turn.
        unacknowledged.computeIfAbsent(partition, p -> new ArrayDeque<>()).add(new Publish(next, 0));
      } else {
        publish(partition, unpublished, next);
      }
    });
    boolean watched = !watch.idle();
    for (Fold.Report report : result.reports()) {
      if (report.verdict() == FoldWatch.Verdict.APPLIED) {
        vertx.eventBus().publish(changesAddress(report.type()), Buffer.buffer(report.change()));
      }
      if (watched) {
        watch.reportVerdict(report.eventId(), report.verdict());
        if (report.verdict() == FoldWatch.Verdict.APPLIED) {
          watch.reportVersion(report.type(), report.key(), report.version());
          watch.reportChange(report.type(), report.key(), report.change());
        }
      }
    }
    Map<TopicPartition, OffsetAndMetadata> commits = new HashMap<>();
    result.nextOffsets().forEach((partition, next) -> commits.put(partition, new OffsetAndMetadata(next)));
    consumer.commitAsync(commits, (offsets, error) -> {
      if (error != null) {
        LOG.debug("committing offsets for lag tools failed (the fold's own offsets are safe): {}", error.toString());
      }
    });
  }

  /**
   * Drops the changes a partition's changes topic holds already: a node that folds a partition
   * again from an older offset (a new owner, a wiped store) must not publish its history twice.
   */
  private List<ProducerRecord<String, byte[]>> notYetPublished(TopicPartition partition,
                                                               List<ProducerRecord<String, byte[]>> records) {
    Long published = publishedUpTo.get(partition);
    if (published == null || records.isEmpty()) {
      return records;
    }
    if (sourceOffset(records.get(0)) > published) {
      publishedUpTo.remove(partition);  // past the mark: nothing more to drop
      return records;
    }
    return records.stream().filter(r -> sourceOffset(r) > published).toList();
  }

  private static long sourceOffset(ProducerRecord<String, byte[]> record) {
    Header header = record.headers().lastHeader(Fold.SOURCE_OFFSET);
    return header == null ? Long.MAX_VALUE : Long.parseLong(new String(header.value(), StandardCharsets.UTF_8));
  }

  /** The event-bus address where local verticles follow the accepted events of a type. */
  public static String changesAddress(String type) {
    return "kfold." + type + ".changes";
  }

  /** Sends a partition's outbox records; once all are acknowledged the outbox is cleared up to {@code next}. */
  private void publish(TopicPartition source, List<ProducerRecord<String, byte[]>> records, long next) {
    if (records.isEmpty()) {
      return;
    }
    Publish publish = new Publish(next, records.size());
    unacknowledged.computeIfAbsent(source, p -> new ArrayDeque<>()).add(publish);
    for (ProducerRecord<String, byte[]> record : records) {
      producer.send(record, (metadata, error) -> {
        if (error != null) {
          publish.error = error;
          LOG.warn("publishing to {} for {} failed: {}", record.topic(), source, error.toString());
        }
        publish.remaining.decrementAndGet();
      });
    }
  }

  /** Adds to the batch the outbox clears that acknowledgements allow, in partition order. */
  private void clearAcknowledged(StoreBatch batch) {
    for (Map.Entry<TopicPartition, ArrayDeque<Publish>> entry : unacknowledged.entrySet()) {
      ArrayDeque<Publish> queue = entry.getValue();
      long clearBefore = -1;
      while (!queue.isEmpty() && queue.peek().remaining.get() == 0) {
        Publish done = queue.poll();
        if (done.error instanceof RetriableException) {
          // Send the whole outbox again, without skipping what looks published: a failed record
          // may sit before records that went through.
          queue.clear();
          republish(entry.getKey(), -1);
          break;
        }
        if (done.error != null) {
          LOG.error("changes of {} before offset {} that failed for good (such as a record too large for the"
              + " broker) are not published; the states and histories hold them", entry.getKey(), done.nextOffset);
        }
        clearBefore = done.nextOffset;
      }
      if (clearBefore >= 0) {
        batch.clearOutbox(entry.getKey().topic(), entry.getKey().partition(), clearBefore);
      }
    }
  }

  /**
   * Publishes again what the outbox of a partition holds (after a crash, or a failed send), but the
   * changes of source offsets up to {@code publishedUpTo}, found in the changes topic already.
   */
  private void republish(TopicPartition partition, long publishedUpTo) {
    if (!consumer.assignment().contains(partition)) {
      return;  // its next owner publishes it from its own outbox
    }
    SortedMap<Long, byte[]> outbox = store.outboxByOffset(partition.topic(), partition.partition());
    if (outbox.isEmpty()) {
      return;
    }
    long published = publishedUpTo;
    List<ProducerRecord<String, byte[]>> records = new ArrayList<>();
    for (Map.Entry<Long, byte[]> entry : outbox.entrySet()) {
      OutboxRecord.Entry decoded = OutboxRecord.decode(entry.getValue());
      if (decoded instanceof OutboxRecord.Whole whole) {
        records.add(whole.record());
      } else if (entry.getKey() > published) {
        records.add(fold.rebuildChange((OutboxRecord.ChangeReference) decoded, partition.partition(), entry.getKey()));
      }
    }
    LOG.info("publishing {} outbox records of {} again ({} were published already)", records.size(), partition,
        outbox.size() - records.size());
    long next = store.nextOffset(partition.topic(), partition.partition()).orElseThrow();
    if (records.isEmpty()) {
      store.write(new StoreBatch().clearOutbox(partition.topic(), partition.partition(), next));
    } else {
      publish(partition, records, next);
    }
  }

  /** The source offset in the last record of a changes partition, or -1 when there is none or it cannot be read. */
  private long lastPublishedSourceOffset(TopicPartition changes) {
    tailReader.assign(List.of(changes));
    tailReader.seekToEnd(List.of(changes));
    long end = tailReader.position(changes);
    if (end == 0) {
      return -1;
    }
    tailReader.seek(changes, end - 1);
    long deadline = System.currentTimeMillis() + 10_000;
    while (System.currentTimeMillis() < deadline) {
      for (ConsumerRecord<byte[], byte[]> record : tailReader.poll(Duration.ofMillis(200))) {
        Header header = record.headers().lastHeader(Fold.SOURCE_OFFSET);
        return header == null ? -1 : Long.parseLong(new String(header.value(), StandardCharsets.UTF_8));
      }
    }
    LOG.warn("could not read the last record of {}: publishing the whole outbox again", changes);
    return -1;
  }



  private void updateLag() {
    Map<TopicPartition, Long> lag = new HashMap<>();
    for (TopicPartition partition : consumer.assignment()) {
      lag.put(partition, consumer.currentLag(partition).orElse(-1));
    }
    progress.lag(lag);
  }

  private void fail(RuntimeException e) {
    LOG.error("the fold stopped: {}", e.toString(), e);
    progress.failed(e);
  }

  private void close() {
    try {
      consumer.close(Duration.ofSeconds(10));
    } catch (RuntimeException e) {
      LOG.warn("closing the fold's consumer failed", e);
    }
    try {
      producer.close(Duration.ofSeconds(10));
    } finally {
      tailReader.close();
    }
  }

  private static final class Publish {
    final long nextOffset;
    final AtomicInteger remaining;
    volatile Exception error;

    Publish(long nextOffset, int records) {
      this.nextOffset = nextOffset;
      this.remaining = new AtomicInteger(records);
    }
  }

  /** Runs on the fold's thread, inside poll: no batch is half done when it is called. */
  private final class Rebalance implements ConsumerRebalanceListener {
    @Override
    public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
      fold.forgetCachedStates();
      for (TopicPartition partition : partitions) {
        OptionalLong next = store.nextOffset(partition.topic(), partition.partition());
        if (next.isPresent()) {
          consumer.seek(partition, next.getAsLong());
        } else {
          consumer.seekToBeginning(List.of(partition));
        }
        // The changes of one events partition go to the same changes partition, in order: those up to
        // the last one found there were published before (by this node before a crash, or by the
        // partition's previous owner), and are not published twice.
        long published = lastPublishedSourceOffset(new TopicPartition(fold.changesTopicOf(partition.topic()),
            partition.partition()));
        publishedUpTo.put(partition, published);
        ArrayDeque<Publish> pending = unacknowledged.get(partition);
        if (pending == null || pending.isEmpty()) {
          republish(partition, published);
        }
      }
      LOG.info("folding {}", partitions);
      updateLag();
      progress.assigned(consumer.groupMetadata().generationId());
    }

    @Override
    public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
      progress.revoked(partitions);
      fold.forgetCachedStates();
      LOG.info("no longer folding {}", partitions);
    }
  }
}
