package io.kfold.fold;

import io.kfold.store.ChangelogItem;
import io.kfold.store.StoreBatch;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Zombie fencing: the fold publishes each poll's changes, dead letters and changelog items in one
 * Kafka transaction, and commits the poll's offsets in it for the fold's consumer group
 * ({@code sendOffsetsToTransaction} with the consumer's group metadata, KIP-447). The group
 * coordinator refuses that commit from a member of an older generation, so a node that stalled and
 * was replaced (removed by another node when its heartbeats stopped, or when its session timed out)
 * cannot commit anything it sends afterwards; the node that removes it also fences its
 * transactional id, which aborts the transaction it left open at once: readers of the
 * changes and changelog topics read committed records only. One transaction holds a poll's changes
 * and its changelog together, so no reader sees a changelog item whose change is missing.
 *
 * <p>A transaction stays open while the next polls are folded, and is committed before a poll's
 * records are sent once it has been open for {@link #COMMIT_INTERVAL}, or at once when a poll is
 * empty: its records go out while the fold works, instead of the fold waiting for them. A commit
 * blocks the fold for a few round trips (flush, offsets, end of the transaction) and makes the
 * broker write a marker into every partition the transaction touched: committing after every
 * small poll of a busy node made that the fold's main cost, and every command waited for it.
 * Fold thread only. A failed transaction throws: the loop restarts, and the new producer, with the
 * same transactional id, aborts whatever the old one left open.
 */
final class FoldTransactions implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(FoldTransactions.class);
  /**
   * How long a transaction may stay open while polls keep bringing records: what it holds becomes
   * visible to readers of the topics at most this much later (Kafka Streams' exactly-once default
   * commit interval). An idle fold commits at once.
   */
  static final Duration COMMIT_INTERVAL = Duration.ofMillis(100);

  private final KafkaProducer<byte[], byte[]> producer;
  private final Supplier<ConsumerGroupMetadata> group;
  private final Clock clock;
  private final Duration commitInterval;
  /** Per source partition, the outbox offset the open transaction publishes up to. */
  private final Map<TopicPartition, Long> inTransaction = new HashMap<>();
  /** Per events partition, the next offset the open transaction commits for the group. */
  private final Map<TopicPartition, Long> offsets = new HashMap<>();
  /** Per source partition, the outbox offset committed transactions published up to, to clear. */
  private final Map<TopicPartition, Long> committed = new HashMap<>();
  private boolean open;
  /** When the open transaction began. */
  private Instant openedAt;
  /** While the consumer joins its group: its metadata may name a generation already left behind. */
  private boolean joining;

  FoldTransactions(Map<String, Object> producerConfig, Supplier<ConsumerGroupMetadata> group, Clock clock,
                   Duration commitInterval) {
    this.group = group;
    this.clock = clock;
    this.commitInterval = commitInterval;
    this.producer = new KafkaProducer<>(producerConfig, new ByteArraySerializer(), new ByteArraySerializer());
    producer.initTransactions();
  }

  /** Adds a batch of a source partition to the open transaction (opening one when none is). */
  void send(TopicPartition source, String changelogTopic, List<ProducerRecord<String, byte[]>> records,
            List<ChangelogItem> changelog, long nextOffset) {
    if (!open) {
      producer.beginTransaction();
      open = true;
      openedAt = clock.instant();
    }
    for (ProducerRecord<String, byte[]> record : records) {
      byte[] key = record.key() == null ? null : record.key().getBytes(StandardCharsets.UTF_8);
      producer.send(new ProducerRecord<>(record.topic(), record.partition(), record.timestamp(), key, record.value(),
          record.headers()));
    }
    for (ChangelogItem item : changelog) {
      producer.send(new ProducerRecord<>(changelogTopic, source.partition(), item.key(), item.value()));
    }
    inTransaction.merge(source, nextOffset, Math::max);
  }

  /** Adds to the open transaction the next offset of each events partition that its batches fold. */
  void folded(Map<TopicPartition, Long> nextOffsets) {
    nextOffsets.forEach((partition, next) -> offsets.merge(partition, next, Math::max));
  }

  /** Commits the open transaction as {@link #commit} does once it has been open for the commit interval; else nothing. */
  Map<TopicPartition, Long> commitIfDue() {
    return open && !clock.instant().isBefore(openedAt.plus(commitInterval)) ? commit() : Map.of();
  }

  /**
   * Commits the open transaction, with the folded offsets committed for the group in it. Throws when
   * the group or another producer fenced this node, or the transaction failed otherwise; its records
   * are then never read. Answers, per source partition, the outbox offset the commit published up
   * to (empty when no transaction was open).
   */
  Map<TopicPartition, Long> commit() {
    if (!open || joining) {
      return Map.of();
    }
    return commitNow();
  }

  /**
   * The consumer starts to join its group: commits the open transaction while the generation it
   * names is still the group's (or this node was fenced, and it fails), then holds the next ones
   * open until {@link #joined}, so that none commits offsets under a generation the group left.
   * The fold goes on meanwhile: its records wait in the open transaction.
   */
  Map<TopicPartition, Long> joining() {
    Map<TopicPartition, Long> published = open ? commitNow() : Map.of();
    joining = true;
    return published;
  }

  /** The consumer has joined: its metadata names the group's generation again. */
  void joined() {
    joining = false;
  }

  /**
   * Commits the open transaction now, also while the consumer joins: for a handover, which runs in
   * the rebalance callback, when the consumer's metadata already names the new generation
   * (cooperative) or still the current one (eager, before the join).
   */
  Map<TopicPartition, Long> commitNow() {
    if (!open) {
      return Map.of();
    }
    try {
      if (!offsets.isEmpty()) {
        Map<TopicPartition, OffsetAndMetadata> next = new HashMap<>();
        offsets.forEach((partition, offset) -> next.put(partition, new OffsetAndMetadata(offset)));
        producer.sendOffsetsToTransaction(next, group.get());
      }
      producer.commitTransaction();
    } catch (KafkaException e) {
      String partitions = inTransaction.keySet().toString();
      abort();
      throw new IllegalStateException("the fold's transaction for " + partitions + " failed, so nothing"
          + " of it is published (if the group gave these partitions to another node, this node was fenced): " + e, e);
    }
    open = false;
    offsets.clear();
    inTransaction.forEach((source, next) -> committed.merge(source, next, Math::max));
    Map<TopicPartition, Long> published = Map.copyOf(inTransaction);
    inTransaction.clear();
    return published;
  }

  /** Adds to {@code batch} the outbox clears of what committed transactions published. */
  void collectCommitted(StoreBatch batch) {
    committed.forEach((source, next) -> batch.clearOutbox(source.topic(), source.partition(), next));
    committed.clear();
  }

  /** The partitions moved: their outbox is no longer this node's to clear. */
  void forget(Collection<TopicPartition> sources) {
    sources.forEach(committed::remove);
  }

  /** Aborts the open transaction, if one is: its records are never read, and the outbox keeps them. */
  void abort() {
    if (!open) {
      return;
    }
    open = false;
    offsets.clear();
    try {
      producer.abortTransaction();
    } catch (KafkaException e) {
      // Fenced producers cannot abort; the broker aborts their transaction when the next producer
      // of the same id starts, or when the transaction times out.
      LOG.debug("aborting the fold's transaction failed: {}", e.toString());
    }
    inTransaction.clear();
  }

  @Override
  public void close() {
    producer.close(Duration.ofSeconds(10));
  }
}
