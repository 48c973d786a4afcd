package io.kfold.fold;

import io.kfold.config.NodeConfig;
import io.kfold.log.KafkaClients;
import io.kfold.store.ChangelogItem;
import io.kfold.store.EntityStore;
import io.kfold.store.StoreBatch;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SortedMap;
import java.util.function.Consumer;
import java.util.function.Supplier;
import java.util.function.ToIntFunction;

/**
 * Publishes what the fold wrote to its outbox: each batch's changes and dead letters, then, once
 * they are acknowledged, its changelog items (in the order {@link PublishQueue} keeps), and clears
 * the outbox behind them. When the fold takes a partition up, publishes again what its outbox still
 * holds, but what the topics hold already ({@link PublishedMarks}). The only owner of the fold's
 * producers. Fold thread only, but for the producers' acknowledgements.
 *
 * <p>With {@code fold.transactions} (the default), each poll goes out in one transaction instead
 * ({@link FoldTransactions}): changes and changelog items become visible together, and a node the
 * group replaced cannot publish.
 */
final class ChangePublisher implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(ChangePublisher.class);
  /** How long a hand-over waits for what was published to be acknowledged. */
  private static final Duration HANDOVER_WAIT = Duration.ofSeconds(10);
  private static final Duration TAIL_READ_WAIT = Duration.ofSeconds(10);

  private final Fold fold;
  private final EntityStore store;
  private final Clock clock;
  /** Without transactions: the changes and dead letters, then the changelog, each acknowledged in order. */
  private final KafkaProducer<String, byte[]> producer;
  private final KafkaProducer<byte[], byte[]> changelogProducer;
  /** With transactions: everything of a poll in one transaction; null without. */
  private final FoldTransactions transactions;
  /** Reads the last records of the changes and dead-letter topics, for the marks. */
  private final KafkaConsumer<byte[], byte[]> tailReader;
  private final PublishQueue queue = new PublishQueue();
  private final PublishedMarks marks = new PublishedMarks();
  /**
   * Told, per source partition, the offset below which everything the fold wrote for it is
   * published (committed, with transactions): changes, dead letters and view contributions.
   */
  private final Consumer<Map<TopicPartition, Long>> published;

  /**
   * @param transactionalId the fold's transactional id, the same for this node across restarts, so
   *                        that a restarted node aborts what it left open; null without transactions
   * @param group           the fold consumer's group metadata, which fences the transactions
   * @param published       told what is published, as it becomes so (fold thread)
   */
  ChangePublisher(NodeConfig config, Fold fold, EntityStore store, Clock clock, String transactionalId,
                  Supplier<ConsumerGroupMetadata> group, Consumer<Map<TopicPartition, Long>> published) {
    this.fold = fold;
    this.published = published;
    this.store = store;
    this.clock = clock;
    NodeConfig.Kafka kafka = config.kafka();
    if (transactionalId != null) {
      transactions = new FoldTransactions(KafkaClients.transactionalPublisher(kafka, config.app() + "-fold-publisher",
          transactionalId), group, clock, FoldTransactions.COMMIT_INTERVAL);
      producer = null;
      changelogProducer = null;
    } else {
      transactions = null;
      producer = new KafkaProducer<>(KafkaClients.changePublisher(kafka, config.app() + "-fold-publisher"),
          new StringSerializer(), new ByteArraySerializer());
      changelogProducer = new KafkaProducer<>(KafkaClients.changePublisher(kafka, config.app() + "-fold-changelog"),
          new ByteArraySerializer(), new ByteArraySerializer());
    }
    tailReader = new KafkaConsumer<>(KafkaClients.logReader(kafka, config.app() + "-fold-tail-reader", 10),
        new ByteArrayDeserializer(), new ByteArrayDeserializer());
  }

  /**
   * Takes up partitions that the fold goes on with (assigned, and restored where they needed it):
   * finds what their topics hold already, and publishes again what their outboxes hold but that.
   */
  void resume(Collection<TopicPartition> sources) {
    if (sources.isEmpty()) {
      return;
    }
    Map<TopicPartition, PublishedMarks.Mark> found = readMarks(sources);
    for (TopicPartition source : sources) {
      marks.put(source, found.get(source));
      if (!republish(source, true)) {
        // The outbox is cleared only behind what was published: an empty one leaves nothing behind.
        store.nextOffset(source.topic(), source.partition()).ifPresent(next -> published.accept(Map.of(source, next)));
      }
      fold.builds().outboxes(source).forEach(this::republishBuild);
    }
  }

  /** Publishes a step of a view's build that the store now holds (see {@link ViewBuilds}). */
  void publish(ViewBuilds.Chunk step) {
    send(step.outbox(), step.records(), step.changelog(), step.step() + 1);
  }

  /** Publishes the changes and dead letters of a batch the store now holds, with its outbox. */
  void publish(Fold.Result result) {
    if (transactions != null) {
      // The earlier polls' transaction, whose records went out while the fold went on, once it is due.
      published.accept(transactions.commitIfDue());
    }
    result.toPublish().forEach((source, records) -> {
      long next = result.nextOffsets().get(source);
      send(source, marks.notYetPublished(source, records, next), result.changelog().get(source), next);
    });
    if (transactions != null) {
      transactions.folded(result.nextOffsets());
    }
  }

  /** The fold's consumer starts to join its group (see {@link FoldTransactions#joining}). */
  void joiningGroup() {
    if (transactions != null) {
      published.accept(transactions.joining());
    }
  }

  /** The fold's consumer has joined its group: transactions commit again. */
  void joinedGroup() {
    if (transactions != null) {
      transactions.joined();
    }
  }

  /** With transactions, commits the open one: when a poll brings nothing, what was sent is not held back. */
  void flush() {
    if (transactions != null) {
      published.accept(transactions.commit());
    }
  }

  /** Whether the poll's offsets are committed in its transaction (then nothing else commits them). */
  boolean commitsOffsets() {
    return transactions != null;
  }

  /**
   * Sends the changelog items that the acknowledgements allow now, publishes again the outbox of a
   * partition whose send failed, and adds to {@code batch} the outbox clears they allow.
   */
  void collectAcknowledged(StoreBatch batch) {
    if (transactions != null) {
      transactions.collectCommitted(batch);  // a failed transaction threw: nothing to publish again here
      return;
    }
    for (PublishQueue.Step step : queue.advance()) {
      if (step instanceof PublishQueue.SendChangelog send) {
        String topic = changelogTopicOf(send.source());
        for (ChangelogItem item : send.items()) {
          changelogProducer.send(new ProducerRecord<>(topic, send.source().partition(), item.key(), item.value()),
              send.batch().callback(send.source(), topic));
        }
      } else if (step instanceof PublishQueue.ClearOutbox clear) {
        batch.clearOutbox(clear.source().topic(), clear.source().partition(), clear.beforeOffset());
        published.accept(Map.of(clear.source(), clear.beforeOffset()));
      } else if (step instanceof PublishQueue.PublishAgain again) {
        if (ViewBuilds.isOutbox(again.source())) {
          republishBuild(again.source());
        } else {
          republish(again.source(), false);
        }
      }
    }
  }

  /**
   * Waits, for at most 10 s, until what was published for these partitions is acknowledged, their
   * changelog items sent and acknowledged too, and their outbox cleared, then forgets them: a node
   * that stops or hands a partition over leaves a complete changelog to the next owner. Whatever is
   * still unpublished after that, the next owner publishes from its own outbox or the log.
   */
  void handOver(Collection<TopicPartition> partitions) {
    List<TopicPartition> sources = withBuildOutboxes(partitions);
    if (transactions != null) {
      // In the rebalance callback, the consumer's metadata names a generation the group holds:
      // the commit goes through.
      published.accept(transactions.commitNow());
      StoreBatch clears = new StoreBatch();
      transactions.collectCommitted(clears);
      if (!clears.isEmpty()) {
        store.write(clears);
      }
    }
    Instant deadline = clock.instant().plus(HANDOVER_WAIT);
    while (queue.pending(sources)) {
      if (clock.instant().isAfter(deadline)) {
        LOG.warn("records of {} still unacknowledged after {} s; their next owner publishes them again", sources,
            HANDOVER_WAIT.toSeconds());
        break;
      }
      StoreBatch clears = new StoreBatch();
      collectAcknowledged(clears);
      if (!clears.isEmpty()) {
        store.write(clears);
      }
      try {
        Thread.sleep(2);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
    }
    forget(sources);
  }

  /**
   * Forgets the partitions at once: sends nothing more for them, not even the changelog items of
   * what is acknowledged, since their next owner may be publishing already.
   */
  void forget(Collection<TopicPartition> partitions) {
    List<TopicPartition> sources = withBuildOutboxes(partitions);
    queue.forget(sources);
    marks.forget(sources);
    if (transactions != null) {
      transactions.abort();  // lost: another node may fold them already (a handover committed first)
      transactions.forget(sources);
    }
  }

  /** The partitions and the outboxes of their views' builds, which move with them. */
  private List<TopicPartition> withBuildOutboxes(Collection<TopicPartition> partitions) {
    List<TopicPartition> all = new ArrayList<>(partitions);
    partitions.forEach(partition -> all.addAll(fold.builds().outboxes(partition)));
    return all;
  }

  /** The changelog topic of a source partition, or of the source partition whose builds an outbox holds. */
  private String changelogTopicOf(TopicPartition source) {
    return fold.changelogTopicOf((ViewBuilds.isOutbox(source) ? ViewBuilds.sourceOf(source) : source).topic());
  }

  private void send(TopicPartition source, List<ProducerRecord<String, byte[]>> records, List<ChangelogItem> changelog,
                    long next) {
    if (transactions != null) {
      transactions.send(source, changelogTopicOf(source), records, changelog, next);
      return;
    }
    PublishQueue.Batch batch = queue.add(source, next, changelog, records.size());
    for (ProducerRecord<String, byte[]> record : records) {
      producer.send(record, batch.callback(source, record.topic()));
    }
  }

  /**
   * Publishes again what the outbox of a partition holds, with the changelog of its changes; with
   * {@code skipPublished}, but what the marks say its topics hold already. False when the outbox
   * holds nothing.
   */
  private boolean republish(TopicPartition source, boolean skipPublished) {
    SortedMap<Long, byte[]> outbox = store.outboxByOffset(source.topic(), source.partition());
    if (outbox.isEmpty()) {
      return false;
    }
    String changesTopic = fold.changesTopicOf(source.topic());
    List<ProducerRecord<String, byte[]>> records = new ArrayList<>();
    List<OutboxRecord.ChangeReference> changes = new ArrayList<>();
    for (Map.Entry<Long, byte[]> entry : outbox.entrySet()) {
      long offset = entry.getKey();
      OutboxRecord.Entry decoded = OutboxRecord.decode(entry.getValue());
      if (decoded instanceof OutboxRecord.Whole whole) {
        if (!skipPublished || !marks.published(source, whole.record().topic(), offset)) {
          records.add(whole.record());
        }
      } else {
        OutboxRecord.ChangeReference change = decoded instanceof OutboxRecord.ChangeWithContributions carrying
            ? carrying.change() : (OutboxRecord.ChangeReference) decoded;
        changes.add(change);
        if (!skipPublished || !marks.published(source, changesTopic, offset)) {
          ProducerRecord<String, byte[]> rebuilt = fold.rebuildChange(change, source.partition(), offset);
          if (rebuilt != null) {  // a view's row publishes no change
            records.add(rebuilt);
          }
        }
        if (decoded instanceof OutboxRecord.ChangeWithContributions carrying) {
          // No mark says which a view's topic holds: all go again, and the views' fold skips the copies.
          records.addAll(carrying.contributions());
        }
      }
    }
    LOG.info("publishing {} records of the {} outbox entries of {} again (the changes of the others were published"
        + " already), and their changelog", records.size(), outbox.size(), source);
    long next = store.nextOffset(source.topic(), source.partition()).orElseThrow();
    send(source, records, fold.rebuildChangelog(changes, source, next), next);
    return true;
  }

  /**
   * Publishes again the steps of a view's build that its outbox holds, with the build's state as the
   * store holds it now: the same records as before, so the rows' marks skip what they applied.
   */
  private void republishBuild(TopicPartition outbox) {
    SortedMap<Long, byte[]> steps = store.outboxByOffset(outbox.topic(), outbox.partition());
    if (steps.isEmpty()) {
      return;
    }
    List<ProducerRecord<String, byte[]>> records = new ArrayList<>();
    steps.values().forEach(step -> records.addAll(((OutboxRecord.Records) OutboxRecord.decode(step)).records()));
    LOG.info("publishing the {} records of {} build steps of {} again", records.size(), steps.size(), outbox);
    send(outbox, records, fold.builds().changelogOf(outbox), steps.lastKey() + 1);
  }

  /** For each partition, the source offsets of the last change and the last dead letter from it in their topics. */
  private Map<TopicPartition, PublishedMarks.Mark> readMarks(Collection<TopicPartition> sources) {
    Map<TopicPartition, Set<Integer>> fromSources = new HashMap<>();
    Set<TopicPartition> changesPartitions = new HashSet<>();
    for (TopicPartition source : sources) {
      changesPartitions.add(changesOf(source));
      fromSources.computeIfAbsent(changesOf(source), p -> new HashSet<>()).add(source.partition());
      fromSources.computeIfAbsent(deadLettersOf(source), p -> new HashSet<>()).add(source.partition());
    }
    Map<TopicPartition, Long> starts = tailReader.beginningOffsets(fromSources.keySet());
    Map<TopicPartition, Long> ends = tailReader.endOffsets(fromSources.keySet());
    Map<TopicPartition, Map<Integer, Long>> last = new HashMap<>();
    fromSources.forEach((log, partitions) -> last.put(log, lastSourceOffsets(log, starts.get(log), ends.get(log),
        partitions, changesPartitions.contains(log) ? record -> log.partition() : ChangePublisher::sourcePartition)));
    Map<TopicPartition, PublishedMarks.Mark> found = new HashMap<>();
    for (TopicPartition source : sources) {
      TopicPartition changes = changesOf(source);
      TopicPartition deadLetters = deadLettersOf(source);
      found.put(source, new PublishedMarks.Mark(changes.topic(), last.get(changes).getOrDefault(source.partition(), -1L),
          deadLetters.topic(), last.get(deadLetters).getOrDefault(source.partition(), -1L)));
    }
    return found;
  }

  /**
   * Per source partition among {@code wanted}, the source offset of the last record from it in
   * {@code log}: reads back from the log's end, in growing windows, until it has found each or
   * reached the log's start.
   */
  private Map<Integer, Long> lastSourceOffsets(TopicPartition log, long start, long end, Set<Integer> wanted,
                                               ToIntFunction<ConsumerRecord<byte[], byte[]>> sourcePartition) {
    Map<Integer, Long> found = new HashMap<>();
    tailReader.assign(List.of(log));
    long to = end;
    long window = 1;
    while (found.size() < wanted.size() && to > start) {
      long from = Math.max(start, to - window);
      Map<Integer, Long> inWindow = new HashMap<>();
      tailReader.seek(log, from);
      Instant deadline = clock.instant().plus(TAIL_READ_WAIT);
      while (tailReader.position(log) < to) {
        if (clock.instant().isAfter(deadline)) {
          throw new TimeoutException("could not read " + log + " from offset " + from + " to " + to + " within "
              + TAIL_READ_WAIT.toSeconds() + " s");
        }
        for (ConsumerRecord<byte[], byte[]> record : tailReader.poll(Duration.ofMillis(200))) {
          Header offset = record.headers().lastHeader(Fold.SOURCE_OFFSET);
          int source = sourcePartition.applyAsInt(record);
          if (record.offset() < to && offset != null && wanted.contains(source)) {
            inWindow.put(source, Long.parseLong(new String(offset.value(), StandardCharsets.UTF_8)));
          }
        }
      }
      inWindow.forEach(found::putIfAbsent);  // an earlier window found a later record
      to = from;
      window = Math.min(window * 4, 10_000);
    }
    return found;
  }

  private TopicPartition changesOf(TopicPartition source) {
    return new TopicPartition(fold.changesTopicOf(source.topic()), source.partition());
  }

  /** The fold writes every dead letter to the first partition of its topic (see Fold#deadLetter). */
  private TopicPartition deadLettersOf(TopicPartition source) {
    return new TopicPartition(fold.deadLetterTopicOf(source.topic()), 0);
  }

  private static int sourcePartition(ConsumerRecord<byte[], byte[]> deadLetter) {
    Header header = deadLetter.headers().lastHeader(Fold.SOURCE_PARTITION);
    return header == null ? -1 : Integer.parseInt(new String(header.value(), StandardCharsets.UTF_8));
  }

  @Override
  public void close() {
    try {
      if (transactions != null) {
        transactions.close();
      } else {
        producer.close(HANDOVER_WAIT);
        changelogProducer.close(HANDOVER_WAIT);
      }
    } finally {
      tailReader.close();
    }
  }
}
