package io.kfold.store;

import java.util.ArrayList;
import java.util.List;

/** The changes of one fold batch, applied together by {@link EntityStore#write(StoreBatch)}. */
public final class StoreBatch {

  sealed interface Change permits PutState, PutEvent, PutOffset, PutOutbox, ClearOutbox, PutIdempotentWrite,
      PutChangelogItem, PutIndexEntry, DeleteIndexEntry, PutIndexBuild, DeleteIndex {}

  record PutState(String type, String key, StoredEntity entity) implements Change {}

  record PutEvent(String type, String key, long version, byte[] event) implements Change {}

  record PutOffset(String topic, int partition, long nextOffset) implements Change {}

  record PutOutbox(String topic, int partition, long offset, byte[] record) implements Change {}

  record ClearOutbox(String topic, int partition, long beforeOffset) implements Change {}

  record PutIdempotentWrite(String type, String key, String idempotencyKey, IdempotentWrite write) implements Change {}

  record PutChangelogItem(ChangelogItem item) implements Change {}

  record PutIndexEntry(String type, String index, byte[] value, String key) implements Change {}

  record DeleteIndexEntry(String type, String index, byte[] value, String key) implements Change {}

  record PutIndexBuild(IndexBuild build) implements Change {}

  record DeleteIndex(String type, String index) implements Change {}

  final List<Change> changes = new ArrayList<>();

  public StoreBatch putState(String type, String key, StoredEntity entity) {
    changes.add(new PutState(type, key, entity));
    return this;
  }

  public StoreBatch putEvent(String type, String key, long version, byte[] event) {
    changes.add(new PutEvent(type, key, version, event));
    return this;
  }

  public StoreBatch putOffset(String topic, int partition, long nextOffset) {
    changes.add(new PutOffset(topic, partition, nextOffset));
    return this;
  }

  /** Keeps a record to publish for the source record at {@code offset} until it is cleared. */
  public StoreBatch putOutbox(String topic, int partition, long offset, byte[] record) {
    changes.add(new PutOutbox(topic, partition, offset, record));
    return this;
  }

  /** Forgets the outbox records of a partition with a source offset before {@code beforeOffset}. */
  public StoreBatch clearOutbox(String topic, int partition, long beforeOffset) {
    changes.add(new ClearOutbox(topic, partition, beforeOffset));
    return this;
  }

  public StoreBatch putIdempotentWrite(String type, String key, String idempotencyKey, IdempotentWrite write) {
    changes.add(new PutIdempotentWrite(type, key, idempotencyKey, write));
    return this;
  }

  /** Writes an item read from a changelog as it is. */
  public StoreBatch putChangelogItem(ChangelogItem item) {
    changes.add(new PutChangelogItem(item));
    return this;
  }

  /** Adds the entry of an entity under a value of one of its type's indexes (see {@link IndexScan}). */
  public StoreBatch putIndexEntry(String type, String index, byte[] value, String key) {
    changes.add(new PutIndexEntry(type, index, value, key));
    return this;
  }

  /** Removes the entry of an entity under a value of an index. */
  public StoreBatch deleteIndexEntry(String type, String index, byte[] value, String key) {
    changes.add(new DeleteIndexEntry(type, index, value, key));
    return this;
  }

  /** Records what an index's entries follow and how far their build has got. */
  public StoreBatch putIndexBuild(IndexBuild build) {
    changes.add(new PutIndexBuild(build));
    return this;
  }

  /** Removes every entry of an index, and the record of its build; entries the batch puts after it stay. */
  public StoreBatch deleteIndex(String type, String index) {
    changes.add(new DeleteIndex(type, index));
    return this;
  }

  /** Adds the changes of another batch, after this one's. */
  public StoreBatch addAll(StoreBatch other) {
    changes.addAll(other.changes);
    return this;
  }

  public int size() {
    return changes.size();
  }

  public boolean isEmpty() {
    return changes.isEmpty();
  }
}
