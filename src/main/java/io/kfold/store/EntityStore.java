package io.kfold.store;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.function.Function;

/**
 * The node's local state: the latest state of each entity, each entity's history, the next offset
 * to fold in each partition, and the outbox of records still to publish. Everything one fold batch
 * changes is written by one {@link #write(StoreBatch)}, atomically.
 *
 * <p>Every method blocks: call it from a worker thread or the fold's own thread, never an event loop.
 */
public interface EntityStore extends AutoCloseable {

  /** The stored state of an entity, or null when it has none. */
  StoredEntity get(String type, String key);

  /** The stored states of many entities of one type, in the order of {@code keys}, null where none. */
  List<StoredEntity> getAll(String type, List<String> keys);

  /** Encoded events of an entity with version {@code >= fromVersion}, oldest first, at most {@code limit}. */
  List<byte[]> history(String type, String key, long fromVersion, int limit);

  /** The offset the fold resumes a partition from, if it has folded any of it. */
  OptionalLong nextOffset(String topic, int partition);

  /** Records the fold wrote for a partition that are not yet known to be published, oldest first. */
  default List<byte[]> outbox(String topic, int partition) {
    return List.copyOf(outboxByOffset(topic, partition).values());
  }

  /** The same, by the offset of the record each comes from. */
  java.util.SortedMap<Long, byte[]> outboxByOffset(String topic, int partition);

  /** What an earlier write with this idempotency key appended to the entity, or null. */
  IdempotentWrite idempotentWrite(String type, String key, String idempotencyKey);

  /** Forgets the idempotency keys recorded before {@code recordedBefore} (epoch millis); answers how many. */
  long forgetIdempotencyKeys(long recordedBefore);

  /**
   * The index that lists every entity of a type: one entry per entity, of an empty value, so that
   * a scan of it lists the entities in key order. No declared index can have this name.
   */
  String ALL_ENTITIES = "";

  /**
   * Entries of an index in (value, key) order, read from one snapshot of the store: the states
   * read with them are those the entries were written with.
   */
  List<IndexScan.Entry> scanIndex(IndexScan scan);

  /** Applies every change of the batch, or none. */
  void write(StoreBatch batch);

  /**
   * The order in which {@link #writeFromStates} walks a type's entities: by the length of the key
   * in UTF-8, then by its bytes (the states column's keys are length-prefixed).
   */
  Comparator<String> STATE_ORDER = Comparator.comparing((String key) -> key.getBytes(StandardCharsets.UTF_8),
      Comparator.<byte[]>comparingInt(bytes -> bytes.length).thenComparing(Arrays::compareUnsigned));

  /** An entity's key and stored state. */
  record KeyedState(String key, StoredEntity entity) {}

  /**
   * Reads the states of a type after {@code afterKey} ({@link #STATE_ORDER}; null: from the first),
   * at most {@code limit}, and writes the batch {@code batchFor} makes of them, with no other write
   * between the read and this one: what the batch derives from the states is still true of them
   * when it is written (see IndexBuilds). Answers the states read.
   */
  List<KeyedState> writeFromStates(String type, String afterKey, int limit, Function<List<KeyedState>, StoreBatch> batchFor);

  /** How many entities of the type have a state. Reads every key of the type: call it rarely. */
  long countStates(String type);

  /** Every index build the store has a record of (see {@link IndexBuild}). */
  List<IndexBuild> indexBuilds();

  /** The record of an index's build, or null when the store has none. */
  IndexBuild indexBuild(String type, String index);

  /**
   * The store's own figures for the metrics, by name: estimated.keys, memtable.bytes, block.cache.bytes,
   * live.sst.bytes, pending.compaction.bytes; empty for a store that has none.
   */
  default Map<String, Double> usage() {
    return Map.of();
  }

  boolean isOpen();

  /** Closes the store; a second call does nothing. */
  @Override
  void close();
}
