package io.kfold.fold;

import org.apache.kafka.common.TopicPartition;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The restores in progress, by changelog partition: the events partition each is for, where it
 * began and ends in the changelog, and how far it has read. Shows them to {@code /ready} (through
 * {@link FoldProgress}) and logs each one's progress at most every 5 s. Fold thread only.
 */
final class Restores {

  private static final Logger LOG = LoggerFactory.getLogger(Restores.class);
  private static final Duration LOG_EVERY = Duration.ofSeconds(5);

  private static final class Restore {
    final TopicPartition source;
    final long from;
    final long end;
    final Instant started;
    long position;
    long records;
    Instant lastLog;

    Restore(TopicPartition source, long from, long end, Instant started) {
      this.source = source;
      this.from = from;
      this.end = end;
      this.started = started;
      this.position = from;
      this.lastLog = started;
    }
  }

  private final FoldProgress progress;
  private final Clock clock;
  private final Map<TopicPartition, Restore> byChangelog = new LinkedHashMap<>();

  Restores(FoldProgress progress, Clock clock) {
    this.progress = progress;
    this.clock = clock;
  }

  /** Restores {@code source} from its changelog partition, from offset {@code from} to {@code end}. */
  void start(TopicPartition source, TopicPartition changelog, long from, long end) {
    byChangelog.put(changelog, new Restore(source, from, end, clock.instant()));
    progress.restoring(source, 0, Math.max(0, end - from));
  }

  /** The changelog partitions being read. */
  Set<TopicPartition> changelogs() {
    return Set.copyOf(byChangelog.keySet());
  }

  boolean isEmpty() {
    return byChangelog.isEmpty();
  }

  /** The reader of a changelog partition is at {@code position}, having read {@code records} more records. */
  void read(TopicPartition changelog, long position, int records) {
    Restore restore = byChangelog.get(changelog);
    restore.position = position;
    restore.records += records;
    long done = Math.min(position, restore.end) - restore.from;
    progress.restoring(restore.source, done, restore.end - restore.from);
    Instant now = clock.instant();
    if (Duration.between(restore.lastLog, now).compareTo(LOG_EVERY) >= 0 && position < restore.end) {
      restore.lastLog = now;
      LOG.info("restoring {} from {}: {} of {} records", restore.source, changelog, done, restore.end - restore.from);
    }
  }

  /** The events partitions whose restore has read its changelog to the end; they are no longer restoring. */
  List<TopicPartition> completed() {
    List<TopicPartition> completed = new ArrayList<>();
    for (Iterator<Map.Entry<TopicPartition, Restore>> it = byChangelog.entrySet().iterator(); it.hasNext(); ) {
      Map.Entry<TopicPartition, Restore> entry = it.next();
      Restore restore = entry.getValue();
      if (restore.position >= restore.end) {
        it.remove();
        progress.restored(restore.source);
        completed.add(restore.source);
        if (restore.end > restore.from) {
          LOG.info("restored {} from {}: {} records in {} ms", restore.source, entry.getKey(), restore.records,
              Duration.between(restore.started, clock.instant()).toMillis());
        }
      }
    }
    return completed;
  }

  /**
   * Stops restoring the events partitions: the group took them away. Answers, per changelog
   * partition, the position each stopped at: the store holds the changelog up to there.
   */
  Map<TopicPartition, Long> cancel(Collection<TopicPartition> sources) {
    Map<TopicPartition, Long> stoppedAt = new HashMap<>();
    for (Iterator<Map.Entry<TopicPartition, Restore>> it = byChangelog.entrySet().iterator(); it.hasNext(); ) {
      Map.Entry<TopicPartition, Restore> entry = it.next();
      Restore restore = entry.getValue();
      if (sources.contains(restore.source)) {
        it.remove();
        progress.restored(restore.source);
        stoppedAt.put(entry.getKey(), restore.position);
        LOG.info("stopped restoring {} at {} of {} records: the partition moved", restore.source,
            restore.position - restore.from, restore.end - restore.from);
      }
    }
    return stoppedAt;
  }
}
