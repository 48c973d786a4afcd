package io.kfold.fold;

import io.kfold.config.NodeConfig;
import io.kfold.log.KafkaClients;
import io.kfold.store.ChangelogItem;
import io.kfold.store.EntityStore;
import io.kfold.store.StoreBatch;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Writes changelogs into the store as they are, in slices between the fold's polls: the restores
 * of partitions the group gives this node, and the warm copies of partitions the cluster asks it
 * to keep (standbys). A partition's store offset is the last marker read, so the fold goes on from
 * there. Owns the restore and standby consumers. Fold thread only.
 */
final class ChangelogReader implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(ChangelogReader.class);
  /** How long one slice of restoring runs before the fold polls again (one poll's write may take longer). */
  private static final Duration SLICE = Duration.ofMillis(100);
  private static final Duration RESTORE_POLL = Duration.ofMillis(50);
  private static final Duration STANDBY_CHECK_EVERY = Duration.ofSeconds(1);

  private final Fold fold;
  private final EntityStore store;
  private final FoldProgress progress;
  private final Clock clock;
  private final Restores restores;
  private final KafkaConsumer<byte[], byte[]> restoreConsumer;
  private final KafkaConsumer<byte[], byte[]> standbyConsumer;
  private Instant nextStandbyCheck = Instant.MIN;
  /**
   * Per changelog partition, where a restore stopped when the group took its partition away: if the
   * partition comes back, the restore goes on from there. Kept in memory only: after a restart the
   * partition goes on from the last marker the store holds, which is as correct, only slower.
   */
  private final Map<TopicPartition, Long> stoppedAt = new HashMap<>();

  ChangelogReader(NodeConfig config, Fold fold, EntityStore store, FoldProgress progress, Clock clock) {
    this.fold = fold;
    this.store = store;
    this.progress = progress;
    this.clock = clock;
    this.restores = new Restores(progress, clock);
    NodeConfig.Kafka kafka = config.kafka();
    restoreConsumer = new KafkaConsumer<>(KafkaClients.logReader(kafka, config.app() + "-fold-restore", 10),
        new ByteArrayDeserializer(), new ByteArrayDeserializer());
    standbyConsumer = new KafkaConsumer<>(KafkaClients.logReader(kafka, config.app() + "-fold-standby", 500),
        new ByteArrayDeserializer(), new ByteArrayDeserializer());
  }

  /**
   * Starts restoring those of the partitions that need it, and answers the others, which the fold
   * goes on with from the store's offset at once. A partition this node keeps a warm copy of, or
   * whose restore stopped when it moved, catches up with its changelog from there; one it has no
   * state of restores all its changelog; one it folded before goes on from its own offset.
   */
  List<TopicPartition> restoreOrResume(Collection<TopicPartition> sources) {
    Set<TopicPartition> standbys = standbyConsumer.assignment();
    Map<TopicPartition, Long> from = new LinkedHashMap<>();
    List<TopicPartition> ready = new ArrayList<>();
    for (TopicPartition source : sources) {
      TopicPartition changelog = fold.changelogOf(source);
      if (standbys.contains(changelog)) {
        from.put(changelog, standbyConsumer.position(changelog));
      } else if (stoppedAt.containsKey(changelog)) {
        from.put(changelog, stoppedAt.get(changelog));
      } else if (store.nextOffset(source.topic(), source.partition()).isEmpty()) {
        from.put(changelog, 0L);
      } else {
        ready.add(source);
      }
    }
    if (from.isEmpty()) {
      return ready;
    }
    Map<TopicPartition, Long> ends = restoreConsumer.endOffsets(from.keySet());
    stoppedAt.keySet().removeAll(from.keySet());
    Set<TopicPartition> keptWarm = new HashSet<>(standbys);
    keptWarm.removeAll(from.keySet());
    if (keptWarm.size() < standbys.size()) {
      standbyConsumer.assign(keptWarm);
      progress.standbys(keptWarm);
    }
    for (TopicPartition source : sources) {
      TopicPartition changelog = fold.changelogOf(source);
      if (from.containsKey(changelog)) {
        restores.start(source, changelog, from.get(changelog), ends.get(changelog));
      }
    }
    restoreConsumer.assign(restores.changelogs());
    from.forEach(restoreConsumer::seek);
    return ready;
  }

  boolean restoring() {
    return !restores.isEmpty();
  }

  /**
   * Restores for about 100 ms (at least one poll of the changelogs, whatever its write takes), so
   * that the fold polls again soon; answers the partitions whose restore is complete.
   */
  List<TopicPartition> restoreSlice() {
    if (restores.isEmpty()) {
      return List.of();
    }
    List<TopicPartition> completed = new ArrayList<>(restores.completed());
    Instant sliceEnd = clock.instant().plus(SLICE);
    while (!restores.isEmpty() && clock.instant().isBefore(sliceEnd)) {
      ConsumerRecords<byte[], byte[]> records = restoreConsumer.poll(RESTORE_POLL);
      if (!records.isEmpty()) {
        store.write(itemsOf(records));
      }
      for (TopicPartition changelog : restores.changelogs()) {
        restores.read(changelog, restoreConsumer.position(changelog), records.records(changelog).size());
      }
      completed.addAll(restores.completed());
    }
    if (!completed.isEmpty()) {
      restoreConsumer.assign(restores.changelogs());
    }
    return completed;
  }

  /**
   * Stops restoring the partitions: the group took them away. What the store holds of them stays
   * consistent: states ahead of the last marker carry the offsets of their last events, so folding
   * from the marker applies nothing twice (see ChangelogItem).
   */
  void cancel(Collection<TopicPartition> sources) {
    if (!restores.isEmpty()) {
      stoppedAt.putAll(restores.cancel(sources));
      restoreConsumer.assign(restores.changelogs());
    }
  }

  /**
   * Follows the changelogs of the partitions the cluster asks this node to keep warm, but those
   * it folds, and writes them into the store; looks at what is asked once a second.
   */
  void keepStandbysWarm(Set<TopicPartition> wanted, Set<TopicPartition> folded) {
    Instant now = clock.instant();
    if (!now.isBefore(nextStandbyCheck)) {
      nextStandbyCheck = now.plus(STANDBY_CHECK_EVERY);
      Set<TopicPartition> changelogs = new HashSet<>();
      for (TopicPartition source : wanted) {
        if (fold.topics().contains(source.topic()) && !folded.contains(source)) {
          changelogs.add(fold.changelogOf(source));
        }
      }
      if (!changelogs.equals(standbyConsumer.assignment())) {
        // Partitions kept are read on from where they were; new ones from the beginning.
        standbyConsumer.assign(changelogs);
        progress.standbys(changelogs);
        LOG.info("keeping warm copies of {}", changelogs);
      }
    }
    if (standbyConsumer.assignment().isEmpty()) {
      return;
    }
    StoreBatch batch = itemsOf(standbyConsumer.poll(Duration.ZERO));
    if (!batch.isEmpty()) {
      store.write(batch);
    }
    // After the write: a copy counts as read to its end only once what was read is in the store.
    for (TopicPartition changelog : standbyConsumer.assignment()) {
      if (!progress.standbyCaughtUp(changelog) && standbyConsumer.currentLag(changelog).orElse(-1) == 0) {
        progress.standbyReadToEnd(changelog);
      }
    }
  }

  /**
   * Changelog records as the store items they carry, to write as they are, with the index entries
   * of the states among them (which the changelog does not carry; see IndexEntries).
   */
  private StoreBatch itemsOf(ConsumerRecords<byte[], byte[]> records) {
    List<ChangelogItem> items = new ArrayList<>(records.count());
    for (ConsumerRecord<byte[], byte[]> record : records) {
      if (record.value() != null) {
        items.add(new ChangelogItem(record.key(), record.value()));
      }
    }
    return items.isEmpty() ? new StoreBatch() : fold.indexEntries().changelogBatch(items, store);
  }

  @Override
  public void close() {
    try {
      restoreConsumer.close(Duration.ofSeconds(5));
    } finally {
      standbyConsumer.close(Duration.ofSeconds(5));
    }
  }
}
