package io.kfold.fold;

import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Collection;
import java.util.HashMap;
import java.util.Map;

/**
 * The folded offsets to commit to Kafka, for lag tools only, at most once per interval: the fold
 * resumes from the store's offsets, and under small writes a commit per batch was a broker request
 * per batch. Fold thread only.
 */
final class LagToolCommits {

  private final Clock clock;
  private final Duration interval;
  private final Map<TopicPartition, OffsetAndMetadata> pending = new HashMap<>();
  /** When the next commit may go; null: at once. */
  private Instant next;

  LagToolCommits(Clock clock, Duration interval) {
    this.clock = clock;
    this.interval = interval;
  }

  /** The partitions are folded up to these offsets (exclusive). */
  void folded(Map<TopicPartition, Long> nextOffsets) {
    nextOffsets.forEach((partition, offset) -> pending.put(partition, new OffsetAndMetadata(offset)));
  }

  /** The offsets to commit now, if the interval since the last commit has passed; empty otherwise. */
  Map<TopicPartition, OffsetAndMetadata> due() {
    Instant now = clock.instant();
    if (pending.isEmpty() || next != null && now.isBefore(next)) {
      return Map.of();
    }
    next = now.plus(interval);
    return takeAll();
  }

  /** Every offset not committed yet, whatever the time: for a last commit when the fold stops. */
  Map<TopicPartition, OffsetAndMetadata> takeAll() {
    Map<TopicPartition, OffsetAndMetadata> offsets = Map.copyOf(pending);
    pending.clear();
    return offsets;
  }

  /** Forgets the partitions: their next owner commits them. */
  void forget(Collection<TopicPartition> partitions) {
    partitions.forEach(pending::remove);
  }
}
