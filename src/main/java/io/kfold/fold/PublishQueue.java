package io.kfold.fold;

import io.kfold.store.ChangelogItem;
import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RetriableException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The fold's batches on their way to Kafka, per source partition, oldest first, and the order
 * they must keep: a batch's changelog items go once its changes and dead letters are acknowledged,
 * and those of every batch before it; the outbox is cleared up to a batch once its changelog items
 * are acknowledged too, and everything before it. So a node that restores from the changelog, and
 * takes the entities' events up to the changelog's as folded, never skips a change that was not
 * published. Acknowledgements arrive on the producers' threads; everything else runs on the fold's.
 */
final class PublishQueue {

  private static final Logger LOG = LoggerFactory.getLogger(PublishQueue.class);

  /** What the acknowledgements so far allow the publisher to do. */
  sealed interface Step permits SendChangelog, ClearOutbox, PublishAgain {}

  /** The batch's changes are acknowledged, and every earlier batch's: send its changelog items. */
  record SendChangelog(TopicPartition source, Batch batch, List<ChangelogItem> items) implements Step {}

  /** Everything the partition's outbox holds below {@code beforeOffset} is published. */
  record ClearOutbox(TopicPartition source, long beforeOffset) implements Step {}

  /**
   * A record of the partition failed with a retriable error: send its whole outbox again, without
   * skipping what looks published, since the failed record may sit before records that went through.
   */
  record PublishAgain(TopicPartition source) implements Step {}

  /** The records of one batch of a partition on their way: first its changes, then its changelog items. */
  static final class Batch {
    final long nextOffset;
    private final AtomicInteger remaining;
    /** The changelog items to send once the changes are acknowledged; null once sent. Fold thread only. */
    private List<ChangelogItem> changelog;
    private volatile Exception error;

    private Batch(long nextOffset, List<ChangelogItem> changelog, int records) {
      this.nextOffset = nextOffset;
      this.changelog = changelog;
      this.remaining = new AtomicInteger(records);
    }

    /** Counts one record as acknowledged, or failed with {@code error}; called on a producer's thread. */
    void acknowledged(Exception failure) {
      if (failure != null) {
        error = failure;
      }
      remaining.decrementAndGet();
    }

    /** The producer callback of one of the batch's records, sent to {@code topic}. */
    Callback callback(TopicPartition source, String topic) {
      return (metadata, failure) -> {
        if (failure != null) {
          LOG.warn("publishing to {} for {} failed: {}", topic, source, failure.toString());
        }
        acknowledged(failure);
      };
    }

    private boolean onItsWay() {
      return remaining.get() > 0;
    }

    private List<ChangelogItem> takeChangelog() {
      List<ChangelogItem> items = changelog;
      changelog = null;
      remaining.set(items.size());
      return items;
    }
  }

  private final Map<TopicPartition, ArrayDeque<Batch>> bySource = new HashMap<>();

  /** A batch of {@code records} changes and dead letters, about to be sent; its callbacks count them. */
  Batch add(TopicPartition source, long nextOffset, List<ChangelogItem> changelog, int records) {
    Batch batch = new Batch(nextOffset, changelog, records);
    bySource.computeIfAbsent(source, p -> new ArrayDeque<>()).add(batch);
    return batch;
  }

  /** What to do now, in partition order; the batches whose changelog it answers count as sending it. */
  List<Step> advance() {
    List<Step> steps = new ArrayList<>();
    for (Map.Entry<TopicPartition, ArrayDeque<Batch>> entry : bySource.entrySet()) {
      TopicPartition source = entry.getKey();
      ArrayDeque<Batch> queue = entry.getValue();
      boolean failed = false;
      for (Batch batch : queue) {
        if (batch.onItsWay()) {
          if (batch.changelog == null) {
            continue;  // its changelog is on its way; a later batch's may follow it
          }
          break;  // its changes are on their way
        }
        if (batch.error instanceof RetriableException) {
          failed = true;
          break;
        }
        if (batch.error != null) {
          LOG.error("records of {} before offset {} that failed for good (such as a record too large for the"
              + " broker) are not published; the states and histories hold them", source, batch.nextOffset);
          batch.error = null;
        }
        if (batch.changelog != null) {
          steps.add(new SendChangelog(source, batch, batch.takeChangelog()));
        }
      }
      if (failed) {
        queue.clear();
        steps.add(new PublishAgain(source));
        continue;
      }
      long clearBefore = -1;
      while (!queue.isEmpty() && queue.peek().changelog == null && !queue.peek().onItsWay()) {
        clearBefore = queue.poll().nextOffset;
      }
      if (clearBefore >= 0) {
        steps.add(new ClearOutbox(source, clearBefore));
      }
    }
    bySource.values().removeIf(ArrayDeque::isEmpty);
    return steps;
  }

  /** Whether a batch of one of the partitions is not yet published whole, changelog included. */
  boolean pending(Collection<TopicPartition> sources) {
    return sources.stream().anyMatch(bySource::containsKey);
  }

  /** Forgets the partitions' batches; acknowledgements that still come count for nothing. */
  void forget(Collection<TopicPartition> sources) {
    sources.forEach(bySource::remove);
  }
}
