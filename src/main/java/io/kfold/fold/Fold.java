package io.kfold.fold;

import com.fasterxml.jackson.core.io.JsonStringEncoder;
import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.config.NodeConfig;
import io.kfold.entity.EntityType;
import io.kfold.types.EntityTypes;
import io.kfold.entity.Envelope;
import io.kfold.types.Envelopes;
import io.kfold.entity.MergeEntityType;
import io.kfold.fold.FoldWatch.Verdict;
import io.kfold.query.IndexEntries;
import io.kfold.store.ChangelogItem;
import io.kfold.store.EntityStore;
import io.kfold.store.IdempotentWrite;
import io.kfold.store.StoreBatch;
import io.kfold.store.StoredEntity;
import io.kfold.view.Contributions;
import io.kfold.view.ViewType;
import io.kfold.view.ViewVersion;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Folds one poll of records into one store batch. Each entity the poll touches is read once (one
 * multi-get per type) and written once, whatever number of its events the poll holds.
 *
 * <p>The version rules: an event whose version is at most the entity's is a duplicate and is
 * skipped; the next version is applied; a later one is a conflict, never applied. An event without
 * a version gets the next one. A command's later events (meta.index above 0) apply only right after
 * the command's earlier events, so that when two writers race, one command wins whole.
 *
 * <p>Views: when an entity of a type some views are from changes, the fold derives what the change
 * brings to each view ({@link Contributions}) and publishes it with the change, through the same
 * outbox. A view's rows are folded here too, as the entities of an internal type ({@link ViewType})
 * whose events are those contributions; a contribution its row applied already is a duplicate.
 */
final class Fold {

  private static final Logger LOG = LoggerFactory.getLogger(Fold.class);
  /** Header of change and dead-letter records: the offset of the event they come from. */
  static final String SOURCE_OFFSET = "kfold.source.offset";
  /** Header of dead-letter records: the events partition of the record. */
  static final String SOURCE_PARTITION = "kfold.source.partition";

  /** The outcome of folding one poll, for the fold's thread to write, publish and report. */
  record Result(Map<TopicPartition, List<ProducerRecord<String, byte[]>>> toPublish,
                Map<TopicPartition, List<ChangelogItem>> changelog, Map<TopicPartition, Long> nextOffsets,
                List<Report> reports) {}

  /** An event's verdict; when it was applied, the entity's version after it and the change record's value. */
  record Report(String type, String key, String eventId, Verdict verdict, long version, byte[] change) {}

  private final NodeConfig config;
  private final EntityStore store;
  private final Map<String, EntityType> typeByTopic = new HashMap<>();
  private final Map<String, EntityType> typeByName = new HashMap<>();
  /** Per partition and slice, the parsed states of recently folded entities. Fold thread only, between polls. */
  private final Map<TopicPartition, Cache[]> caches = new HashMap<>();
  /** Fold the slices of a poll side by side; null with one fold thread. */
  private final ExecutorService workers;
  private final int slicesPerPartition;
  private final FoldProgress progress;
  private final IndexEntries indexEntries;
  /** Per user type, the views it counts in; absent for a type no view is from. */
  private final Map<String, List<ViewType>> viewsByType = new HashMap<>();
  /** The views' builds from stored states, and which versions a change contributes to. */
  private final ViewBuilds builds;

  Fold(NodeConfig config, EntityTypes types, EntityStore store, FoldProgress progress) {
    this.config = config;
    this.store = store;
    this.progress = progress;
    this.indexEntries = new IndexEntries(types);
    for (EntityType type : types.folded()) {
      typeByTopic.put(config.eventsTopic(type.name()), type);
      typeByName.put(type.name(), type);
    }
    for (ViewType view : types.views()) {
      view.definition().from().forEach(from -> viewsByType.computeIfAbsent(from, t -> new ArrayList<>()).add(view));
    }
    this.builds = new ViewBuilds(config, store, viewsByType);
    int threads = config.fold().threads() > 0 ? config.fold().threads() : Runtime.getRuntime().availableProcessors();
    this.slicesPerPartition = threads;
    AtomicInteger counter = new AtomicInteger();
    this.workers = threads == 1 ? null : Executors.newFixedThreadPool(threads - 1, task -> {
      Thread thread = new Thread(task, "kfold-fold-worker-" + counter.incrementAndGet());
      thread.setDaemon(true);
      return thread;
    });
  }

  /** Stops the fold's workers. */
  void close() {
    if (workers != null) {
      workers.shutdownNow();
    }
  }

  /**
   * Forgets the cached states of partitions that move: one taken away may be folded elsewhere
   * before it comes back. The partitions kept keep theirs: only this node folds them.
   */
  void forgetCachedStates(java.util.Collection<TopicPartition> partitions) {
    caches.keySet().removeAll(partitions);
    builds.forget(partitions);
  }

  ViewBuilds builds() {
    return builds;
  }

  /** Keeps the index entries with the states; also for the states that restores and standbys write. */
  IndexEntries indexEntries() {
    return indexEntries;
  }

  java.util.Set<String> topics() {
    return typeByTopic.keySet();
  }

  /** The changes topic fed by an events topic. */
  String changesTopicOf(String eventsTopic) {
    return config.changesTopic(typeByTopic.get(eventsTopic).name());
  }

  /** The dead-letter topic of an events topic. */
  String deadLetterTopicOf(String eventsTopic) {
    return config.deadLetterTopic(typeByTopic.get(eventsTopic).name());
  }

  /** The changelog topic of an events topic. */
  String changelogTopicOf(String eventsTopic) {
    return config.changelogTopic(typeByTopic.get(eventsTopic).name());
  }

  /** The changelog partition of an events partition. */
  TopicPartition changelogOf(TopicPartition events) {
    return new TopicPartition(changelogTopicOf(events.topic()), events.partition());
  }

  /**
   * The changelog items of the changes an outbox names, rebuilt from the store when the outbox is
   * published again: each entity's current state, the events, their idempotency keys, and the marker.
   */
  List<ChangelogItem> rebuildChangelog(List<OutboxRecord.ChangeReference> changes, TopicPartition partition,
                                       long nextOffset) {
    List<ChangelogItem> items = new ArrayList<>();
    Map<String, OutboxRecord.ChangeReference> entities = new LinkedHashMap<>();
    for (OutboxRecord.ChangeReference change : changes) {
      entities.put(change.type() + '\u0000' + change.key(), change);
      if (!keepsHistory(typeByName.get(change.type()))) {
        continue;  // its state (below) is all its changelog holds
      }
      List<byte[]> event = store.history(change.type(), change.key(), change.version(), 1);
      if (event.isEmpty()) {
        throw new IllegalStateException("the store lacks " + change.type() + " '" + change.key() + "' version "
            + change.version() + " that its outbox names");
      }
      items.add(ChangelogItem.event(change.type(), change.key(), change.version(), event.get(0)));
      try {
        String idempotencyKey = Envelopes.fromJson(Envelopes.parse(event.get(0))).idempotencyKey();
        IdempotentWrite write = idempotencyKey == null ? null
            : store.idempotentWrite(change.type(), change.key(), idempotencyKey);
        if (write != null) {
          items.add(ChangelogItem.idempotentWrite(change.type(), change.key(), idempotencyKey, write));
        }
      } catch (IOException e) {
        throw new IllegalStateException("unreadable history of " + change.type() + " '" + change.key() + "'", e);
      }
    }
    for (OutboxRecord.ChangeReference entity : entities.values()) {
      items.add(ChangelogItem.state(entity.type(), entity.key(), store.get(entity.type(), entity.key())));
    }
    items.add(ChangelogItem.nextOffset(partition.topic(), partition.partition(), nextOffset));
    return items;
  }

  /**
   * Adds the poll's changes to {@code batch}; returns what to publish and report once it is written.
   * The poll is cut into slices, one per partition and worker, each holding the records of a share
   * of the partition's entities in their order, and the slices are folded side by side: an entity's
   * events are all in one slice, and no two slices share an entity.
   */
  Result fold(ConsumerRecords<byte[], byte[]> records, StoreBatch batch) {
    Map<TopicPartition, List<Slice>> byPartition = new LinkedHashMap<>();
    List<Slice> all = new ArrayList<>();
    for (TopicPartition partition : records.partitions()) {
      builds.prepare(typeByTopic.get(partition.topic()).name(), List.of(partition));
      Cache[] partitionCaches = caches.computeIfAbsent(partition, p -> newCaches());
      List<List<ConsumerRecord<byte[], byte[]>>> shares = share(records.records(partition));
      List<Slice> slices = new ArrayList<>();
      for (int i = 0; i < shares.size(); i++) {
        if (!shares.get(i).isEmpty()) {
          slices.add(new Slice(partition, shares.get(i), partitionCaches[i]));
        }
      }
      byPartition.put(partition, slices);
      all.addAll(slices);
    }
    int cacheShare = Math.max(1, config.fold().cacheEntries() / (caches.size() * slicesPerPartition));
    caches.values().forEach(partitionCaches -> Arrays.stream(partitionCaches).forEach(c -> c.capacity = cacheShare));
    if (all.size() == 1 || workers == null) {
      all.forEach(Slice::run);
    } else {
      List<Future<?>> running = new ArrayList<>();
      all.subList(1, all.size()).forEach(slice -> running.add(workers.submit(slice)));
      all.get(0).run();  // the fold's own thread takes a slice too
      for (Future<?> slice : running) {
        try {
          slice.get();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new IllegalStateException("interrupted while folding", e);
        } catch (ExecutionException e) {
          throw e.getCause() instanceof RuntimeException runtime ? runtime : new IllegalStateException(e.getCause());
        }
      }
    }
    Map<TopicPartition, List<ProducerRecord<String, byte[]>>> toPublish = new HashMap<>();
    Map<TopicPartition, List<ChangelogItem>> changelog = new HashMap<>();
    Map<TopicPartition, Long> nextOffsets = new HashMap<>();
    List<Report> reports = new ArrayList<>();
    byPartition.forEach((partition, slices) -> {
      List<ConsumerRecord<byte[], byte[]>> polled = records.records(partition);
      long next = polled.get(polled.size() - 1).offset() + 1;
      List<Output> outputs = new ArrayList<>();
      List<ChangelogItem> items = new ArrayList<>();
      for (Slice slice : slices) {
        batch.addAll(slice.batch);
        outputs.addAll(slice.outputs);
        items.addAll(slice.changelog);
        reports.addAll(slice.reports);
      }
      // The changes topic gets a partition's changes in the order of their events, as one thread would.
      outputs.sort(Comparator.comparingLong(Output::sourceOffset));
      toPublish.put(partition, outputs.stream().map(Output::record).toList());
      batch.putOffset(partition.topic(), partition.partition(), next);
      // The marker comes after the partition's items: a restore that reads it has all they hold.
      items.add(ChangelogItem.nextOffset(partition.topic(), partition.partition(), next));
      changelog.put(partition, items);
      nextOffsets.put(partition, next);
    });
    return new Result(toPublish, changelog, nextOffsets, reports);
  }

  /** Cuts a partition's records into one share per slice, by entity, each in the records' order. */
  private List<List<ConsumerRecord<byte[], byte[]>>> share(List<ConsumerRecord<byte[], byte[]>> records) {
    if (slicesPerPartition == 1) {
      return List.of(records);
    }
    List<List<ConsumerRecord<byte[], byte[]>>> shares = new ArrayList<>(slicesPerPartition);
    for (int i = 0; i < slicesPerPartition; i++) {
      shares.add(new ArrayList<>(records.size() / slicesPerPartition + 16));
    }
    for (ConsumerRecord<byte[], byte[]> record : records) {
      int slice = record.key() == null ? 0 : Math.floorMod(Arrays.hashCode(record.key()), slicesPerPartition);
      shares.get(slice).add(record);
    }
    return shares;
  }

  private Cache[] newCaches() {
    Cache[] partitionCaches = new Cache[slicesPerPartition];
    Arrays.setAll(partitionCaches, i -> new Cache());
    return partitionCaches;
  }

  /** A record to publish, with the offset of the event it comes from. */
  private record Output(long sourceOffset, ProducerRecord<String, byte[]> record) {}

  /** Folds the records of a share of one partition's entities in a poll, into a store batch of its own. */
  private final class Slice implements Runnable {
    final TopicPartition partition;
    final List<ConsumerRecord<byte[], byte[]>> records;
    final Cache cache;
    final StoreBatch batch = new StoreBatch();
    final List<Output> outputs = new ArrayList<>();
    final List<ChangelogItem> changelog = new ArrayList<>();
    final List<Report> reports = new ArrayList<>();

    Slice(TopicPartition partition, List<ConsumerRecord<byte[], byte[]>> records, Cache cache) {
      this.partition = partition;
      this.records = records;
      this.cache = cache;
    }

    @Override
    public void run() {
      EntityType type = typeByTopic.get(partition.topic());
      Map<String, Working> states = loadStates(type.name(), records, cache);
      List<ProducerRecord<String, byte[]>> contributed = new ArrayList<>();
      for (ConsumerRecord<byte[], byte[]> record : records) {
        ProducerRecord<String, byte[]> out = foldRecord(type, record, states, batch, changelog, reports, contributed);
        if (out != null) {
          outputs.add(new Output(record.offset(), out));
        }
        contributed.forEach(contribution -> outputs.add(new Output(record.offset(), contribution)));
        contributed.clear();
      }
      for (Map.Entry<String, Working> entity : states.entrySet()) {
        Working working = entity.getValue();
        if (working.changed) {
          if (working.stateBytes == null) {
            working.stateBytes = Envelopes.toBytes(working.state);  // a row: once per poll (see foldRecord)
          }
          if (working.unreported != null) {
            reports.add(rowReport(type, entity.getKey(), working));
          }
          StoredEntity stored = new StoredEntity(working.version, working.sourceOffset, working.lastCommandId,
              working.stateBytes);
          batch.putState(type.name(), entity.getKey(), stored);
          indexEntries.changed(batch, type.name(), entity.getKey(), working.before, working.state);
          changelog.add(ChangelogItem.state(type.name(), entity.getKey(), stored));
        }
        if (working.version > 0) {
          cache.put(entity.getKey(), working);
        }
      }
    }
  }

  private static JsonNode plain(JsonNode state) {
    return plain(Envelopes.toBytes(state));
  }

  private static JsonNode plain(byte[] state) {
    try {
      return Envelopes.parse(state);
    } catch (IOException e) {
      throw new IllegalStateException("a state is not JSON", e);
    }
  }

  /** Reads the state of every entity the records touch: from the cache, the others with one multi-get. */
  private Map<String, Working> loadStates(String type, List<ConsumerRecord<byte[], byte[]>> records, Cache cache) {
    Map<String, Working> states = new LinkedHashMap<>();
    List<String> missing = new ArrayList<>();
    for (ConsumerRecord<byte[], byte[]> record : records) {
      if (record.key() == null) {
        continue;
      }
      String key = new String(record.key(), StandardCharsets.UTF_8);
      if (!states.containsKey(key)) {
        Working cached = cache.get(key);
        if (cached != null) {
          cached.changed = false;
        } else {
          missing.add(key);
        }
        states.put(key, cached);
      }
    }
    if (!missing.isEmpty()) {
      List<StoredEntity> stored = store.getAll(type, missing);
      for (int i = 0; i < missing.size(); i++) {
        states.put(missing.get(i), new Working(stored.get(i)));
      }
    }
    return states;
  }

  /**
   * The latest state of recently folded entities of one partition, parsed: a hot entity is neither
   * read from the store nor parsed again on every poll. Only the fold changes states, so the cache
   * cannot be stale; it is emptied when partitions move. Used by one thread at a time.
   */
  private static final class Cache extends LinkedHashMap<String, Working> {
    int capacity = 1;

    Cache() {
      super(1024, 0.75f, true);
    }

    @Override
    protected boolean removeEldestEntry(Map.Entry<String, Working> eldest) {
      return size() > capacity;
    }
  }

  /**
   * Folds one record; returns the change or dead letter to publish for it, if any, and adds to
   * {@code contributed} what the event brings to the views, to publish right after it.
   */
  private ProducerRecord<String, byte[]> foldRecord(EntityType type, ConsumerRecord<byte[], byte[]> record,
                                                    Map<String, Working> states, StoreBatch batch,
                                                    List<ChangelogItem> changelog, List<Report> reports,
                                                    List<ProducerRecord<String, byte[]>> contributed) {
    Envelope event;
    try {
      event = Envelopes.decode(type.name(), record.key(), record.value(), record.topic(), record.partition(),
          record.offset(), record.timestamp());
    } catch (Envelopes.UndecodableEventException e) {
      return deadLetter(type, record, e.getMessage(), batch);
    }
    Working entity = states.get(event.key());
    if (record.offset() <= entity.sourceOffset) {
      // Folded already: the entity came from a changelog written after this event.
      progress.duplicates.increment();
      reports.add(new Report(type.name(), event.key(), event.id(), Verdict.DUPLICATE, 0, null));
      return null;
    }
    if (type instanceof ViewType view) {
      try {
        if (view.applied(entity.state(type), event.payload())) {
          // Published again (an outbox after a crash, a rewound group): its row has it already.
          progress.contributionsSkipped.increment();
          reports.add(new Report(type.name(), event.key(), event.id(), Verdict.DUPLICATE, 0, null));
          return null;
        }
      } catch (RuntimeException e) {
        reports.add(new Report(type.name(), event.key(), event.id(), Verdict.DEAD_LETTERED, 0, null));
        return deadLetter(type, record, e.getMessage(), batch);
      }
    }
    long eventVersion = event.version() == Envelope.NO_VERSION ? entity.version + 1 : event.version();
    if (eventVersion <= entity.version) {
      progress.duplicates.increment();
      reports.add(new Report(type.name(), event.key(), event.id(), Verdict.DUPLICATE, 0, null));
      return null;
    }
    boolean chainBroken = event.indexInCommand() > 0 && !Objects.equals(event.commandId(), entity.lastCommandId);
    if (eventVersion > entity.version + 1 || chainBroken) {
      progress.conflicts.increment();
      LOG.warn("conflict: {} '{}' is at version {}; event {} (version {}, command {}) at {}-{}@{} rejected",
          type.name(), event.key(), entity.version, event.id(), eventVersion, event.commandId(), record.topic(),
          record.partition(), record.offset());
      reports.add(new Report(type.name(), event.key(), event.id(), Verdict.CONFLICT, 0, null));
      return null;
    }
    Envelope applied = event.withVersion(eventVersion);
    List<ViewType> views = viewsByType.getOrDefault(type.name(), List.of());
    JsonNode viewBefore = views.isEmpty() || entity.version == 0 ? null : plain(type, entity.state(type));
    JsonNode newState;
    try {
      // A row's state is the fold's own: changed in place rather than copied (ViewType.applyInPlace).
      newState = Objects.requireNonNull(type instanceof ViewType view ? view.applyInPlace(entity.state(type), applied)
          : type.apply(entity.state(type), applied), "apply returned null");
    } catch (RuntimeException e) {
      reports.add(new Report(type.name(), event.key(), event.id(), Verdict.DEAD_LETTERED, 0, null));
      return deadLetter(type, record, "apply failed: " + e, batch);
    }
    if (!keepsHistory(type)) {
      // A row: only the poll's last state is stored, and a hot row takes thousands of contributions
      // in a poll, so its state is serialized and its change reported once, at the end of the slice.
      entity.advance(eventVersion, record, event.commandId(), newState, null);
      entity.unreported = applied;
      if (type instanceof ViewType view && ViewType.isBuiltRecord(event.key())) {
        progress.viewVersionsComplete(new TopicPartition(record.topic(), record.partition()), view.complete(newState));
      }
      progress.contributionsApplied.increment();
      // The reference brings the row's state into the changelog rebuilt with a republished outbox.
      batch.putOutbox(record.topic(), record.partition(), record.offset(),
          OutboxRecord.reference(type.name(), event.key(), eventVersion));
      return null;
    }
    // Each event and each new state is serialized once: the history, the store and the change
    // record are all made of these bytes.
    byte[] eventBytes = Envelopes.toBytes(applied);
    byte[] stateBytes = Envelopes.toBytes(newState);
    entity.advance(eventVersion, record, event.commandId(), newState, stateBytes);
    batch.putEvent(type.name(), event.key(), eventVersion, eventBytes);
    changelog.add(ChangelogItem.event(type.name(), event.key(), eventVersion, eventBytes));
    if (event.idempotencyKey() != null) {
      // Recorded with the state, so a retry of the write finds it exactly when its events are folded.
      IdempotentWrite write = new IdempotentWrite(eventVersion - event.indexInCommand(), eventVersion, record.timestamp(),
          record.offset());
      batch.putIdempotentWrite(type.name(), event.key(), event.idempotencyKey(), write);
      changelog.add(ChangelogItem.idempotentWrite(type.name(), event.key(), event.idempotencyKey(), write));
    }
    progress.applied.increment();
    byte[] changeBytes = changeRecord(event.key() + ":" + eventVersion, eventBytes, stateBytes);
    reports.add(new Report(type.name(), event.key(), event.id(), Verdict.APPLIED, eventVersion, changeBytes));
    if (!views.isEmpty()) {
      contribute(views, type, event.key(), viewBefore, type instanceof MergeEntityType ? plain(stateBytes) : newState,
          new TopicPartition(record.topic(), record.partition()), record.offset(), contributed);
    }
    // The reference also brings the entity's state into the changelog rebuilt with a republished
    // outbox; the contributions go again as they are.
    batch.putOutbox(record.topic(), record.partition(), record.offset(), contributed.isEmpty()
        ? OutboxRecord.reference(type.name(), event.key(), eventVersion)
        : OutboxRecord.withContributions(type.name(), event.key(), eventVersion, contributed));
    return changeRecord(type, event.key(), record.partition(), record.offset(), changeBytes);
  }

  /**
   * The report of a row's contributions applied in a poll: one change, of its last contribution and
   * the state after it. The node's listeners (a row's change stream) want the row's latest answer,
   * not each step to it.
   */
  private Report rowReport(EntityType type, String key, Working row) {
    Envelope last = row.unreported;
    row.unreported = null;
    byte[] change = changeRecord(key + ":" + row.version, Envelopes.toBytes(last), row.stateBytes);
    return new Report(type.name(), key, last.id(), Verdict.APPLIED, row.version, change);
  }

  /**
   * What one event of an entity brings to the views: its share before the event taken out, its share
   * after put in, for each version the event contributes to ({@link ViewBuilds#contributesTo}). Made
   * per event, not per poll, so that they are the same whatever polls the events came in: a node
   * that folds the events again (after a crash, or on a store another node has moved past) sends
   * copies, which the rows skip, never other contributions for the same offsets.
   */
  private void contribute(List<ViewType> views, EntityType type, String key, JsonNode before, JsonNode after,
                          TopicPartition partition, long offset, List<ProducerRecord<String, byte[]>> contributed) {
    for (ViewType view : views) {
      for (ViewVersion version : builds.contributesTo(view, partition, key)) {
        for (Contributions.Contribution contribution : Contributions.of(view.definition(), version, type.name(), key,
            before, after, partition.partition(), offset)) {
          contributed.add(new ProducerRecord<>(config.eventsTopic(view.name()), contribution.rowKey(),
              contribution.value()));
        }
      }
    }
  }

  /**
   * A state as the views read it, plain JSON: a merge type's state keeps unchanged members as raw
   * text, so it goes through its bytes; any other type's is plain already.
   */
  private static JsonNode plain(EntityType type, JsonNode state) {
    return type instanceof MergeEntityType ? plain(state) : state;
  }

  /**
   * Whether the type keeps its entities' events (their history, in the store and the changelog) and
   * publishes a change record for each. A view's row takes one contribution per change of an entity
   * that counts in it, without end, and is read by its state only: its changes reach the node's own
   * listeners (change streams), never the history nor the changes topic.
   */
  static boolean keepsHistory(EntityType type) {
    return !(type instanceof ViewType);
  }

  private ProducerRecord<String, byte[]> changeRecord(EntityType type, String key, int partition, long sourceOffset,
                                                      byte[] value) {
    RecordHeaders headers = new RecordHeaders();
    headers.add(SOURCE_OFFSET, Long.toString(sourceOffset).getBytes(StandardCharsets.UTF_8));
    return new ProducerRecord<>(config.changesTopic(type.name()), partition, null, key, value, headers);
  }

  /**
   * The change record of an event the store holds, as the fold first made it: the event from the
   * entity's history, and the state after it, refolded from the history when it is not the latest.
   * Null for a type that publishes no changes.
   */
  ProducerRecord<String, byte[]> rebuildChange(OutboxRecord.ChangeReference reference, int partition, long sourceOffset) {
    EntityType type = typeByName.get(reference.type());
    if (!keepsHistory(type)) {
      return null;  // it publishes no changes
    }
    StoredEntity current = store.get(type.name(), reference.key());
    List<byte[]> history = store.history(type.name(), reference.key(), 1, (int) reference.version());
    if (current == null || history.size() != reference.version()) {
      throw new IllegalStateException("the store lacks " + type.name() + " '" + reference.key() + "' version "
          + reference.version() + " that its outbox names");
    }
    byte[] stateBytes;
    if (current.version() == reference.version()) {
      stateBytes = current.state();
    } else {
      JsonNode state = type.initialState();
      for (byte[] event : history) {
        try {
          state = type.apply(state, Envelopes.fromJson(Envelopes.parse(event)));
        } catch (IOException e) {
          throw new IllegalStateException("unreadable history of " + type.name() + " '" + reference.key() + "'", e);
        }
      }
      stateBytes = Envelopes.toBytes(state);
    }
    byte[] value = changeRecord(reference.key() + ":" + reference.version(), history.get(history.size() - 1), stateBytes);
    return changeRecord(type, reference.key(), partition, sourceOffset, value);
  }

  /** The value of a change record, {@code {"id", "event", "state"}}, assembled from serialized parts. */
  static byte[] changeRecord(String id, byte[] event, byte[] state) {
    byte[] quotedId = JsonStringEncoder.getInstance().quoteAsUTF8(id);
    ByteArrayOutputStream out = new ByteArrayOutputStream(quotedId.length + event.length + state.length + 32);
    out.writeBytes(ID_PREFIX);
    out.writeBytes(quotedId);
    out.writeBytes(EVENT_PREFIX);
    out.writeBytes(event);
    out.writeBytes(STATE_PREFIX);
    out.writeBytes(state);
    out.write('}');
    return out.toByteArray();
  }

  private static final byte[] ID_PREFIX = "{\"id\":\"".getBytes(StandardCharsets.UTF_8);
  private static final byte[] EVENT_PREFIX = "\",\"event\":".getBytes(StandardCharsets.UTF_8);
  private static final byte[] STATE_PREFIX = ",\"state\":".getBytes(StandardCharsets.UTF_8);

  private ProducerRecord<String, byte[]> deadLetter(EntityType type, ConsumerRecord<byte[], byte[]> record,
                                                    String error, StoreBatch batch) {
    progress.deadLettered.increment();
    LOG.warn("dead-lettering {}-{}@{}: {}", record.topic(), record.partition(), record.offset(), error);
    RecordHeaders headers = new RecordHeaders();
    headers.add("kfold.source.topic", record.topic().getBytes(StandardCharsets.UTF_8));
    headers.add(SOURCE_PARTITION, Integer.toString(record.partition()).getBytes(StandardCharsets.UTF_8));
    headers.add(SOURCE_OFFSET, Long.toString(record.offset()).getBytes(StandardCharsets.UTF_8));
    headers.add("kfold.error", error.getBytes(StandardCharsets.UTF_8));
    String key = record.key() == null ? null : new String(record.key(), StandardCharsets.UTF_8);
    // Always its first partition (the topic has one): the dead letters of a source partition stay in
    // order there, so the last one marks what was published before (see PublishedMarks).
    ProducerRecord<String, byte[]> letter = new ProducerRecord<>(config.deadLetterTopic(type.name()), 0, null, key,
        record.value() == null ? new byte[0] : record.value(), headers);
    batch.putOutbox(record.topic(), record.partition(), record.offset(), OutboxRecord.encode(letter));
    return letter;
  }

  /** An entity while a poll is folded: parsed once, serialized once, however many events it gets. */
  private static final class Working {
    long version;
    long sourceOffset = -1;
    /** The events partition of the entity, once the fold applied one of its events. */
    TopicPartition partition;
    String lastCommandId;
    private JsonNode state;
    private byte[] storedState;
    byte[] stateBytes;
    boolean changed;
    /** The state before the poll's first event of the entity, null when it had none: its index entries. */
    JsonNode before;
    /** A row's last contribution applied in the poll, until the end of the slice reports it. */
    Envelope unreported;

    Working(StoredEntity stored) {
      if (stored != null) {
        version = stored.version();
        sourceOffset = stored.sourceOffset();
        lastCommandId = stored.lastCommandId();
        storedState = stored.state();
      }
    }

    JsonNode state(EntityType type) {
      if (state == null) {
        try {
          state = storedState == null ? type.initialState() : Envelopes.parse(storedState);
        } catch (IOException e) {
          throw new IllegalStateException("stored state of a " + type.name() + " is not JSON", e);
        }
      }
      return state;
    }

    void advance(long newVersion, ConsumerRecord<?, ?> source, String commandId, JsonNode newState,
                 byte[] newStateBytes) {
      if (!changed) {
        before = version == 0 ? null : state;  // parsed already: the event was applied to it
      }
      version = newVersion;
      sourceOffset = source.offset();
      partition = new TopicPartition(source.topic(), source.partition());
      lastCommandId = commandId;
      state = newState;
      stateBytes = newStateBytes;
      changed = true;
    }
  }
}
