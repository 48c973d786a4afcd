package io.kfold.fold;

import io.kfold.config.NodeConfig;
import io.kfold.types.EntityTypes;
import io.kfold.log.BalancedAssignor;
import io.kfold.log.KafkaConsumerLoop;
import io.kfold.log.KafkaClients;
import io.kfold.store.EntityStore;
import io.kfold.store.StoreBatch;
import io.kfold.store.StoredEntity;
import io.kfold.view.ViewType;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.EventBus;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Clock;
import java.time.Duration;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Set;
import java.util.function.Supplier;

/**
 * The fold's consumer loop, run by the node's supervisor on a thread of its own: each round polls,
 * acts on what the group changed ({@link PartitionLifecycle}), folds the records ({@link Fold}),
 * writes the batch, hands it to the {@link ChangePublisher}, restores a slice of changelog
 * ({@link ChangelogReader}), commits offsets for lag tools and keeps the standbys warm. On open, a
 * partition resumes from the store's offset, never Kafka's, and its outbox is published again: all
 * the loop keeps in memory is rebuilt from the store and the topics.
 */
final class FoldLoop extends KafkaConsumerLoop<byte[], byte[]> {

  private static final Logger LOG = LoggerFactory.getLogger(FoldLoop.class);
  private static final Duration POLL = Duration.ofMillis(100);
  private static final Duration LAG_TOOL_COMMIT_INTERVAL = Duration.ofSeconds(1);

  private final NodeConfig config;
  private final EntityTypes types;
  private final EntityStore store;
  private final FoldWatch watch;
  private final FoldProgress progress;
  private final EventBus eventBus;
  /** The events partitions this node should keep warm copies of, as the cluster's claims say. */
  private final Supplier<Set<TopicPartition>> standbysWanted;
  private final Duration maxPollInterval;
  /** With fold.transactions, the publisher's transactional id; null without. */
  private final String transactionalId;
  private final Clock clock;

  private Fold fold;
  private ChangePublisher publisher;
  private ChangelogReader changelog;
  private PartitionLifecycle lifecycle;
  private LagToolCommits lagToolCommits;
  /** Assigned partitions to restore, or to go on with from the store's offset. */
  private final Set<TopicPartition> toTakeUp = new LinkedHashSet<>();
  /** Assigned partitions ready to go on from the store's offset, once their outbox is published again. */
  private final Set<TopicPartition> toResume = new LinkedHashSet<>();

  FoldLoop(NodeConfig config, EntityTypes types, EntityStore store, FoldWatch watch, FoldProgress progress,
           EventBus eventBus, Supplier<Set<TopicPartition>> standbysWanted, Duration maxPollInterval, String transactionalId,
           Clock clock) {
    this.transactionalId = transactionalId;
    this.config = config;
    this.types = types;
    this.store = store;
    this.watch = watch;
    this.progress = progress;
    this.eventBus = eventBus;
    this.standbysWanted = standbysWanted;
    this.maxPollInterval = maxPollInterval;
    this.clock = clock;
  }

  @Override
  public void open() {
    toTakeUp.clear();
    toResume.clear();
    fold = new Fold(config, types, store, progress);
    lagToolCommits = new LagToolCommits(clock, LAG_TOOL_COMMIT_INTERVAL);
    publisher = new ChangePublisher(config, fold, store, clock, transactionalId, () -> consumer.groupMetadata(),
        watch::reportPublished);
    changelog = new ChangelogReader(config, fold, store, progress, clock);
    Map<String, Object> consumerConfig = KafkaClients.foldConsumer(config.kafka(),
        config.app(), config.kafka().groupInstanceId(), config.fold().maxPollRecords(),
        config.kafka().sessionTimeoutMs(), (int) maxPollInterval.toMillis());
    // Rebalances are incremental: the fold goes on while the consumer joins, and its transactions
    // must not commit offsets meanwhile.
    ChangePublisher joiningPublisher = publisher;
    Fold openedFold = fold;
    consumerConfig.put(BalancedAssignor.JOIN_LISTENER, new BalancedAssignor.JoinListener() {
      @Override
      public void joining() {
        joiningPublisher.joiningGroup();
      }

      @Override
      public void joined() {
        joiningPublisher.joinedGroup();
      }

      @Override
      public Set<TopicPartition> warm() {
        Set<TopicPartition> warm = new HashSet<>();
        for (TopicPartition source : standbysWanted.get()) {
          if (openedFold.topics().contains(source.topic()) && progress.standbyCaughtUp(openedFold.changelogOf(source))) {
            warm.add(source);
          }
        }
        return warm;
      }
    });
    KafkaConsumer<byte[], byte[]> opened = new KafkaConsumer<>(consumerConfig);
    consumer = opened;
    lifecycle = new PartitionLifecycle(opened::pause, () -> opened.groupMetadata().generationId(), this::stopFolding);
    opened.subscribe(fold.topics(), lifecycle);
  }

  @Override
  public void runOnce() {
    // While a restore runs, the poll only keeps the node in the group: the restore slice is the wait.
    ConsumerRecords<byte[], byte[]> records = consumer.poll(changelog.restoring() ? Duration.ZERO : POLL);
    actOnPartitionChanges();
    buildViews();
    // Nothing that can fail with a retriable error comes before the records are written: the
    // supervisor would retry the round, and the next poll would not return them again.
    StoreBatch batch = new StoreBatch();
    publisher.collectAcknowledged(batch);
    if (!records.isEmpty()) {
      foldAndPublish(records, batch);
    } else {
      publisher.flush();
      if (!batch.isEmpty()) {
        store.write(batch);
      }
    }
    takeUpAssigned();
    List<TopicPartition> restored = changelog.restoreSlice();
    if (!restored.isEmpty()) {
      toResume.addAll(restored);
      resume();
    }
    commitForLagTools();
    reportLag();
    reportPositions();
    changelog.keepStandbysWarm(standbysWanted.get(), consumer.assignment());
  }

  /**
   * Tells those who wait for a position the consumer's position in their partitions, after the
   * round's write: every record below it was polled and is in the store, and the markers and
   * aborted records below it were passed over. Partitions paused (taken up, restoring) are not
   * read from yet.
   */
  private void reportPositions() {
    Set<TopicPartition> wanted = watch.positionsWanted();
    if (wanted.isEmpty()) {
      return;
    }
    Set<TopicPartition> assigned = consumer.assignment();
    Set<TopicPartition> paused = consumer.paused();
    Map<TopicPartition, Long> positions = new HashMap<>();
    for (TopicPartition partition : wanted) {
      if (assigned.contains(partition) && !paused.contains(partition)) {
        try {
          positions.put(partition, consumer.position(partition, Duration.ZERO));
        } catch (org.apache.kafka.common.errors.TimeoutException e) {
          // No position known yet (being reset): the next round reports it.
        }
      }
    }
    watch.reportPositions(positions);
  }

  private void foldAndPublish(ConsumerRecords<byte[], byte[]> records, StoreBatch batch) {
    long start = System.nanoTime();
    Fold.Result result = fold.fold(records, batch);
    store.write(batch);
    progress.batchFolded(records.count(), System.nanoTime() - start);
    // The verdicts first: a write's answer needs its event in the store, not the publishing, which
    // may commit a transaction (a few round trips to the broker).
    report(result.reports());
    watch.reportFolded(result.nextOffsets());
    publisher.publish(result);
    if (!publisher.commitsOffsets()) {
      lagToolCommits.folded(result.nextOffsets());
    }
  }

  /**
   * The steps of the views' builds from stored states due in the partitions the fold goes on with
   * (see {@link ViewBuilds}): before the poll's records are folded, on this thread, so no change
   * comes between; a partition taken up with no state completes its builds before its first event.
   */
  private void buildViews() {
    Set<TopicPartition> folding = new LinkedHashSet<>(consumer.assignment());
    folding.removeAll(consumer.paused());
    fold.builds().step(folding).forEach(publisher::publish);
  }

  /** Publishes each applied change on the event bus, and tells those who wait for the fold. */
  private void report(List<Fold.Report> reports) {
    boolean watched = !watch.idle();
    for (Fold.Report report : reports) {
      if (report.verdict() == FoldWatch.Verdict.APPLIED) {
        eventBus.publish(FoldVerticle.changesAddress(report.type()), Buffer.buffer(report.change()));
      }
      if (watched) {
        watch.reportVerdict(report.eventId(), report.verdict());
        if (report.verdict() == FoldWatch.Verdict.APPLIED) {
          watch.reportVersion(report.type(), report.key(), report.version());
          watch.reportChange(report.type(), report.key(), report.change());
        }
      }
    }
  }

  /**
   * Takes what the group changed during the poll into the loop's own bookkeeping; nothing here
   * talks to Kafka, so a round that fails later finds it still to do. Rebalances are incremental:
   * a change names only the partitions that came or went, and those the node keeps go on folding
   * untouched (no pause, no seek, their cached states kept).
   */
  private void actOnPartitionChanges() {
    int generation = -1;
    for (PartitionLifecycle.Change change : lifecycle.take()) {
      fold.forgetCachedStates(change.partitions());
      if (change.kind() == PartitionLifecycle.Kind.ASSIGNED) {
        toTakeUp.addAll(change.partitions());
        generation = change.generation();
      } else {
        // Handed over inside the callback already; a restore under way stops here.
        changelog.cancel(change.partitions());
        toTakeUp.removeAll(change.partitions());
        toResume.removeAll(change.partitions());
        lagToolCommits.forget(change.partitions());  // their next owner commits them
      }
    }
    if (generation >= 0) {
      reportLag();  // first, so the new partitions show as taken up before the assignment is reported
      progress.assigned(generation);
      LOG.info("assigned {}", consumer.assignment());
    }
  }

  /** Starts restoring the assigned partitions that need it, and resumes the others. */
  private void takeUpAssigned() {
    if (!toTakeUp.isEmpty()) {
      toResume.addAll(changelog.restoreOrResume(toTakeUp));
      toTakeUp.clear();
    }
    resume();
  }

  /** Moves the partitions to the store's offset, publishes their outbox again, and lets the poll return their records. */
  private void resume() {
    if (toResume.isEmpty()) {
      return;
    }
    publisher.resume(toResume);
    reportViewVersionsComplete(toResume);
    for (TopicPartition partition : toResume) {
      OptionalLong next = store.nextOffset(partition.topic(), partition.partition());
      if (next.isPresent()) {
        consumer.seek(partition, next.getAsLong());
      } else {
        consumer.seekToBeginning(List.of(partition));
      }
    }
    consumer.resume(toResume);
    LOG.info("folding {}", toResume);
    toResume.clear();
  }

  /** For the partitions of views' rows taken up, the versions complete in them, as the store has them. */
  private void reportViewVersionsComplete(Collection<TopicPartition> partitions) {
    for (ViewType view : types.views()) {
      for (TopicPartition partition : partitions) {
        if (partition.topic().equals(config.eventsTopic(view.name()))) {
          StoredEntity built = store.get(view.name(), ViewType.builtKey(partition.partition()));
          progress.viewVersionsComplete(partition, built == null ? List.of() : view.complete(parse(built.state())));
        }
      }
    }
  }

  private static com.fasterxml.jackson.databind.JsonNode parse(byte[] state) {
    try {
      return io.kfold.types.Envelopes.parse(state);
    } catch (java.io.IOException e) {
      throw new IllegalStateException("a stored state is not JSON", e);
    }
  }

  private void commitForLagTools() {
    Map<TopicPartition, OffsetAndMetadata> offsets = lagToolCommits.due();
    if (!offsets.isEmpty()) {
      consumer.commitAsync(offsets, (committed, error) -> {
        if (error != null) {
          LOG.debug("committing offsets for lag tools failed (the fold's own offsets are safe): {}", error.toString());
        }
      });
    }
  }

  private void reportLag() {
    Set<TopicPartition> paused = consumer.paused();
    Map<TopicPartition, Long> lag = new HashMap<>();
    for (TopicPartition partition : consumer.assignment()) {
      if (!paused.contains(partition)) {
        lag.put(partition, consumer.currentLag(partition).orElse(-1));
      }
    }
    progress.lag(lag, paused);
  }

  /** Called by the rebalance callback, before the group gives the partitions to another node. */
  private void stopFolding(Collection<TopicPartition> partitions, boolean lost) {
    progress.revoked(partitions);
    watch.revoked(partitions);
    if (lost) {
      publisher.forget(partitions);
    } else {
      publisher.handOver(partitions);
    }
    LOG.info("no longer folding {}", partitions);
  }

  /**
   * Stopping, hands every partition over (publishes acknowledged, outbox cleared) and commits for
   * lag tools; after a failure, only closes: the next open rebuilds what the store and topics hold.
   */
  @Override
  public void close(boolean stopping) {
    if (lifecycle != null) {
      lifecycle.stop();  // closing the consumer calls the callbacks: the handover happens here instead
    }
    try {
      if (stopping && consumer != null && publisher != null) {
        handOverAll();
      }
    } finally {
      progress.stopped();
      closeAll(stopping);
    }
  }

  private void handOverAll() {
    try {
      stopFolding(consumer.assignment(), false);
    } catch (RuntimeException e) {
      LOG.warn("handing the fold's partitions over on stop failed; their next owner publishes from its outbox: {}",
          e.toString());
    }
    try {
      Map<TopicPartition, OffsetAndMetadata> offsets = lagToolCommits.takeAll();
      if (!offsets.isEmpty()) {
        consumer.commitSync(offsets, Duration.ofSeconds(5));
      }
    } catch (RuntimeException e) {
      LOG.debug("committing offsets for lag tools on stop failed: {}", e.toString());
    }
  }

  private void closeAll(boolean stopping) {
    closeQuietly("consumer", () -> closeConsumer(Duration.ofSeconds(10), stopping));
    if (publisher != null) {
      closeQuietly("publisher", publisher::close);
      publisher = null;
    }
    if (changelog != null) {
      closeQuietly("changelog reader", changelog::close);
      changelog = null;
    }
    if (fold != null) {
      fold.close();
      fold = null;
    }
    lifecycle = null;
  }

  private static void closeQuietly(String what, Runnable close) {
    try {
      close.run();
    } catch (RuntimeException e) {
      LOG.warn("closing the fold's {} failed: {}", what, e.toString());
    }
  }
}
