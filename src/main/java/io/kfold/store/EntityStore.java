package io.kfold.store;

import java.util.List;
import java.util.OptionalLong;

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

  boolean isOpen();

  /** Closes the store; a second call does nothing. */
  @Override
  void close();
}
