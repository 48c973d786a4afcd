package io.kfold.fold;

import io.kfold.KfoldConfig;
import io.kfold.entity.EntityTypes;
import io.kfold.log.KafkaClients;
import io.kfold.log.Supervisor;
import io.kfold.store.ChangelogItem;
import io.kfold.store.EntityStore;
import io.kfold.store.StoreBatch;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.buffer.Buffer;
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
import java.util.HashSet;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Set;
import java.util.SortedMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

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
  private static final long COMMIT_INTERVAL_MS = 1000;

  private final KfoldConfig config;
  private final EntityStore store;
  private final FoldWatch watch;
  private final FoldProgress progress;
  private final Fold fold;
  private final Supervisor supervisor;
  private final Duration maxPollInterval;

  private KafkaConsumer<byte[], byte[]> consumer;
  private KafkaProducer<String, byte[]> producer;
  private KafkaProducer<byte[], byte[]> changelogProducer;
  /** Reads the last record of a changes partition, and restores partitions from their changelog. Fold thread only. */
  private KafkaConsumer<byte[], byte[]> logReader;
  /** Keeps the standby partitions warm from their changelogs. Fold thread only. */
  private KafkaConsumer<byte[], byte[]> standbyReader;
  /** The events partitions this node should keep warm copies of, as the cluster's claims say. */
  private final Supplier<Set<TopicPartition>> standbysWanted;
  private long nextStandbyCheck;
  private Thread thread;
  private volatile boolean running = true;
  /** Per partition, the publishes not yet acknowledged, oldest first. Fold thread only. */
  private final Map<TopicPartition, ArrayDeque<Publish>> unacknowledged = new HashMap<>();
  /** Folded offsets not yet committed to Kafka (see {@link #commitForLagTools}). Fold thread only. */
  private final Map<TopicPartition, OffsetAndMetadata> toCommit = new HashMap<>();
  private long lastCommit;
  /** Per partition, the source offset up to which the changes topic held changes when it was assigned. */
  private final Map<TopicPartition, Long> publishedUpTo = new HashMap<>();

  public FoldVerticle(KfoldConfig config, EntityTypes types, EntityStore store, FoldWatch watch,
                      FoldProgress progress, Supplier<Set<TopicPartition>> standbysWanted, Supervisor supervisor,
                      Duration maxPollInterval) {
    this.config = config;
    this.maxPollInterval = maxPollInterval;
    this.supervisor = supervisor;
    this.standbysWanted = standbysWanted;
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
          config.fold().maxPollRecords(), config.kafka().sessionTimeoutMs(), (int) maxPollInterval.toMillis()));
      Map<String, Object> producerConf = KafkaClients.changePublisher(bootstrap, config.app() + "-fold-publisher");
      producer = new KafkaProducer<>(producerConf, new StringSerializer(), new ByteArraySerializer());
      changelogProducer = new KafkaProducer<>(KafkaClients.changePublisher(bootstrap, config.app() + "-fold-changelog"),
          new ByteArraySerializer(), new ByteArraySerializer());
      logReader = new KafkaConsumer<>(KafkaClients.logReader(bootstrap, config.app() + "-fold-log-reader", 10),
          new ByteArrayDeserializer(), new ByteArrayDeserializer());
      standbyReader = new KafkaConsumer<>(KafkaClients.logReader(bootstrap, config.app() + "-fold-standby", 500),
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
        commitForLagTools();
        updateLag();
        keepStandbysWarm();
      }
    } catch (WakeupException e) {
      if (running) {
        fail(e);
      }
    } catch (RuntimeException e) {
      fail(e);
    } finally {
      if (!running && progress.failure() == null) {
        drain(List.copyOf(unacknowledged.keySet()));
      }
      close();
    }
  }

  /**
   * Waits, for at most 10 s, until what was published for these partitions is acknowledged, their
   * changelog sent and acknowledged too, and their outbox cleared: a node that stops or hands a
   * partition over leaves a complete changelog to the next owner.
   */
  private void drain(Collection<TopicPartition> partitions) {
    long deadline = System.currentTimeMillis() + 10_000;
    while (partitions.stream().anyMatch(p -> unacknowledged.containsKey(p) && !unacknowledged.get(p).isEmpty())) {
      if (System.currentTimeMillis() > deadline) {
        LOG.warn("records of {} still unacknowledged after 10 s; their next owner publishes them again", partitions);
        return;
      }
      StoreBatch batch = new StoreBatch();
      clearAcknowledged(batch);
      if (!batch.isEmpty()) {
        store.write(batch);
      }
      try {
        Thread.sleep(2);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }

  private void foldAndPublish(ConsumerRecords<byte[], byte[]> records, StoreBatch batch) {
    Fold.Result result = fold.fold(records, batch);
    store.write(batch);
    progress.batches.increment();
    result.toPublish().forEach((partition, out) ->
        publish(partition, notYetPublished(partition, out), result.changelog().get(partition),
            result.nextOffsets().get(partition)));
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
    result.nextOffsets().forEach((partition, next) -> toCommit.put(partition, new OffsetAndMetadata(next)));
  }

  /**
   * Commits the folded offsets to Kafka, for lag tools, at most once a second: the fold resumes from
   * the store's offsets, and under small writes a commit per batch was a broker request per batch.
   */
  private void commitForLagTools() {
    long now = System.currentTimeMillis();
    if (toCommit.isEmpty() || now - lastCommit < COMMIT_INTERVAL_MS) {
      return;
    }
    lastCommit = now;
    consumer.commitAsync(new HashMap<>(toCommit), (offsets, error) -> {
      if (error != null) {
        LOG.debug("committing offsets for lag tools failed (the fold's own offsets are safe): {}", error.toString());
      }
    });
    toCommit.clear();
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

  /**
   * Sends a partition's changes and dead letters, then, once they are acknowledged, its changelog
   * items (see {@link #clearAcknowledged}); once those are too, the outbox is cleared up to {@code next}.
   */
  private void publish(TopicPartition source, List<ProducerRecord<String, byte[]>> records, List<ChangelogItem> changelog,
                       long next) {
    Publish publish = new Publish(next, changelog);
    unacknowledged.computeIfAbsent(source, p -> new ArrayDeque<>()).add(publish);
    publish.remaining.set(records.size());
    for (ProducerRecord<String, byte[]> record : records) {
      producer.send(record, publish.callback(source, record.topic()));
    }
  }

  /**
   * Sends the changelog items of each batch whose changes are acknowledged, and adds to the batch the
   * outbox clears that acknowledgements allow, in partition order. A batch's changelog goes after its
   * changes, so that a node restoring from the changelog, which takes the entities' events up to the
   * changelog's as folded, never skips a change that was not published.
   */
  private void clearAcknowledged(StoreBatch batch) {
    for (Map.Entry<TopicPartition, ArrayDeque<Publish>> entry : unacknowledged.entrySet()) {
      TopicPartition source = entry.getKey();
      ArrayDeque<Publish> queue = entry.getValue();
      boolean failed = false;
      for (Publish publish : queue) {
        if (publish.remaining.get() > 0) {
          if (publish.changelog == null) {
            continue;  // its changelog is on its way; a later batch's may follow it
          }
          break;  // its changes are on their way
        }
        if (publish.error instanceof RetriableException) {
          failed = true;
          break;
        }
        if (publish.error != null) {
          LOG.error("records of {} before offset {} that failed for good (such as a record too large for the"
              + " broker) are not published; the states and histories hold them", source, publish.nextOffset);
          publish.error = null;
        }
        if (publish.changelog != null) {
          sendChangelog(source, publish);
        }
      }
      if (failed) {
        // Send the whole outbox again, without skipping what looks published: a failed record
        // may sit before records that went through.
        queue.clear();
        republish(source, -1);
        continue;
      }
      long clearBefore = -1;
      while (!queue.isEmpty() && queue.peek().changelog == null && queue.peek().remaining.get() == 0) {
        clearBefore = queue.poll().nextOffset;
      }
      if (clearBefore >= 0) {
        batch.clearOutbox(source.topic(), source.partition(), clearBefore);
      }
    }
  }

  private void sendChangelog(TopicPartition source, Publish publish) {
    List<ChangelogItem> items = publish.changelog;
    publish.changelog = null;
    publish.remaining.set(items.size());
    String topic = fold.changelogTopicOf(source.topic());
    for (ChangelogItem item : items) {
      changelogProducer.send(new ProducerRecord<>(topic, source.partition(), item.key(), item.value()),
          publish.callback(source, topic));
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
    List<OutboxRecord.ChangeReference> changes = new ArrayList<>();
    for (Map.Entry<Long, byte[]> entry : outbox.entrySet()) {
      OutboxRecord.Entry decoded = OutboxRecord.decode(entry.getValue());
      if (decoded instanceof OutboxRecord.Whole whole) {
        records.add(whole.record());
      } else {
        OutboxRecord.ChangeReference change = (OutboxRecord.ChangeReference) decoded;
        changes.add(change);
        if (entry.getKey() > published) {
          records.add(fold.rebuildChange(change, partition.partition(), entry.getKey()));
        }
      }
    }
    LOG.info("publishing {} outbox records of {} again ({} were published already), and their changelog",
        records.size(), partition, outbox.size() - records.size());
    long next = store.nextOffset(partition.topic(), partition.partition()).orElseThrow();
    publish(partition, records, fold.rebuildChangelog(changes, partition, next), next);
  }

  /** The source offset in the last record of a changes partition, or -1 when there is none or it cannot be read. */
  private long lastPublishedSourceOffset(TopicPartition changes) {
    logReader.assign(List.of(changes));
    logReader.seekToEnd(List.of(changes));
    long end = logReader.position(changes);
    if (end == 0) {
      return -1;
    }
    logReader.seek(changes, end - 1);
    long deadline = System.currentTimeMillis() + 10_000;
    while (System.currentTimeMillis() < deadline) {
      for (ConsumerRecord<byte[], byte[]> record : logReader.poll(Duration.ofMillis(200))) {
        Header header = record.headers().lastHeader(Fold.SOURCE_OFFSET);
        return header == null ? -1 : Long.parseLong(new String(header.value(), StandardCharsets.UTF_8));
      }
    }
    LOG.warn("could not read the last record of {}: publishing the whole outbox again", changes);
    return -1;
  }

  /**
   * Writes a partition's changelog into the store from {@code position} to its end, as it is: the
   * entities' states, histories and idempotency keys, and the offset the fold goes on from.
   */
  private void restore(TopicPartition source, long position) {
    TopicPartition changelog = fold.changelogOf(source);
    logReader.assign(List.of(changelog));
    long end = logReader.endOffsets(List.of(changelog)).get(changelog);
    if (position >= end) {
      return;
    }
    logReader.seek(changelog, position);
    long started = System.currentTimeMillis();
    long lastLog = started;
    long items = 0;
    progress.restoring(source, 0, end - position);
    while (running && logReader.position(changelog) < end) {
      StoreBatch batch = itemsOf(logReader.poll(Duration.ofMillis(200)));
      store.write(batch);
      items += batch.size();
      long done = logReader.position(changelog) - position;
      progress.restoring(source, done, end - position);
      if (System.currentTimeMillis() - lastLog > 5_000) {
        lastLog = System.currentTimeMillis();
        LOG.info("restoring {} from {}: {} of {} records", source, changelog, done, end - position);
      }
    }
    progress.restored(source);
    LOG.info("restored {} from {}: {} items in {} ms; folding on from offset {}", source, changelog, items,
        System.currentTimeMillis() - started, store.nextOffset(source.topic(), source.partition()).orElse(0));
  }

  /**
   * Follows the changelogs of the partitions the cluster asks this node to keep warm and writes them
   * into the store, between polls of the fold. A partition's store offset is the last marker read, so
   * when the partition comes to this node the fold goes on from there.
   */
  private void keepStandbysWarm() {
    long now = System.currentTimeMillis();
    if (now >= nextStandbyCheck) {
      nextStandbyCheck = now + 1000;
      Set<TopicPartition> wanted = new HashSet<>();
      for (TopicPartition source : standbysWanted.get()) {
        if (fold.topics().contains(source.topic()) && !consumer.assignment().contains(source)) {
          wanted.add(fold.changelogOf(source));
        }
      }
      if (!wanted.equals(standbyReader.assignment())) {
        // Partitions kept are read on from where they were; new ones from the beginning.
        standbyReader.assign(wanted);
        progress.standbys(wanted);
        LOG.info("keeping warm copies of {}", wanted);
      }
    }
    if (standbyReader.assignment().isEmpty()) {
      return;
    }
    StoreBatch batch = itemsOf(standbyReader.poll(Duration.ZERO));
    if (!batch.isEmpty()) {
      store.write(batch);
    }
  }

  /** Changelog records as the store items they carry, to write as they are. */
  private static StoreBatch itemsOf(ConsumerRecords<byte[], byte[]> records) {
    StoreBatch batch = new StoreBatch();
    for (ConsumerRecord<byte[], byte[]> record : records) {
      if (record.value() != null) {
        batch.putChangelogItem(new ChangelogItem(record.key(), record.value()));
      }
    }
    return batch;
  }

  /** Stops keeping a partition warm; answers the changelog position its copy has reached, or -1 if it had none. */
  private long releaseStandby(TopicPartition source) {
    TopicPartition changelog = fold.changelogOf(source);
    Set<TopicPartition> standbys = new HashSet<>(standbyReader.assignment());
    if (!standbys.remove(changelog)) {
      return -1;
    }
    long position = standbyReader.position(changelog);
    standbyReader.assign(standbys);
    progress.standbys(standbys);
    return position;
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
    fold.close();
    try {
      if (!toCommit.isEmpty()) {
        consumer.commitSync(toCommit, Duration.ofSeconds(5));
      }
    } catch (RuntimeException e) {
      LOG.debug("committing offsets for lag tools on close failed: {}", e.toString());
    }
    try {
      consumer.close(Duration.ofSeconds(10));
    } catch (RuntimeException e) {
      LOG.warn("closing the fold's consumer failed", e);
    }
    try {
      producer.close(Duration.ofSeconds(10));
      changelogProducer.close(Duration.ofSeconds(10));
    } finally {
      logReader.close();
      standbyReader.close();
    }
  }

  /** The records of one batch of a partition on their way: first its changes, then its changelog items. */
  private static final class Publish {
    final long nextOffset;
    final AtomicInteger remaining = new AtomicInteger();
    /** The changelog items to send once the changes are acknowledged; null once sent. Fold thread only. */
    List<ChangelogItem> changelog;
    volatile Exception error;

    Publish(long nextOffset, List<ChangelogItem> changelog) {
      this.nextOffset = nextOffset;
      this.changelog = changelog;
    }

    org.apache.kafka.clients.producer.Callback callback(TopicPartition source, String topic) {
      return (metadata, error) -> {
        if (error != null) {
          this.error = error;
          LOG.warn("publishing to {} for {} failed: {}", topic, source, error.toString());
        }
        remaining.decrementAndGet();
      };
    }
  }

  /** Runs on the fold's thread, inside poll: no batch is half done when it is called. */
  private final class Rebalance implements ConsumerRebalanceListener {
    @Override
    public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
      fold.forgetCachedStates();
      for (TopicPartition partition : partitions) {
        // A warm copy catches up with the changelog; a partition this node has no state of restores
        // from it; one it folded before goes on from its own offset.
        long standbyPosition = releaseStandby(partition);
        if (standbyPosition >= 0) {
          restore(partition, standbyPosition);
        } else if (store.nextOffset(partition.topic(), partition.partition()).isEmpty()) {
          restore(partition, 0);
        }
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
      watch.revoked(partitions);
      fold.forgetCachedStates();
      // Whatever is still unpublished after that, the next owner publishes from its own outbox or
      // the log: no changelog item of this node's may go after the next owner's.
      drain(partitions);
      partitions.forEach(unacknowledged::remove);
      partitions.forEach(toCommit::remove);  // their next owner commits them
      LOG.info("no longer folding {}", partitions);
    }
  }
}
