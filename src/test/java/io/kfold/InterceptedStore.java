package io.kfold;

import io.kfold.store.EntityStore;
import io.kfold.store.IdempotentWrite;
import io.kfold.store.IndexBuild;
import io.kfold.store.StoreBatch;
import io.kfold.store.StoredEntity;

import java.util.List;
import java.util.OptionalLong;
import java.util.SortedMap;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * A real store with something done before each write: a delay, or an injected failure (the
 * {@code beforeWrite} action throws, and the batch is not written); and, before each write derived
 * from states (an index build's chunk), a pause. Everything else goes to the store.
 */
public final class InterceptedStore implements EntityStore {

  private final EntityStore store;
  private final Consumer<StoreBatch> beforeWrite;
  private final Runnable beforeWriteFromStates;

  public InterceptedStore(EntityStore store, Consumer<StoreBatch> beforeWrite) {
    this(store, beforeWrite, () -> { });
  }

  /** @param beforeWriteFromStates runs before each {@link #writeFromStates}, before it reads (may block it) */
  public InterceptedStore(EntityStore store, Consumer<StoreBatch> beforeWrite, Runnable beforeWriteFromStates) {
    this.store = store;
    this.beforeWrite = beforeWrite;
    this.beforeWriteFromStates = beforeWriteFromStates;
  }

  @Override
  public List<KeyedState> writeFromStates(String type, String afterKey, int limit,
                                          Function<List<KeyedState>, StoreBatch> batchFor) {
    beforeWriteFromStates.run();
    return store.writeFromStates(type, afterKey, limit, batchFor);
  }

  @Override
  public long countStates(String type) {
    return store.countStates(type);
  }

  @Override
  public List<IndexBuild> indexBuilds() {
    return store.indexBuilds();
  }

  @Override
  public IndexBuild indexBuild(String type, String index) {
    return store.indexBuild(type, index);
  }

  @Override
  public void write(StoreBatch batch) {
    beforeWrite.accept(batch);
    store.write(batch);
  }

  @Override
  public StoredEntity get(String type, String key) {
    return store.get(type, key);
  }

  @Override
  public List<StoredEntity> getAll(String type, List<String> keys) {
    return store.getAll(type, keys);
  }

  @Override
  public List<byte[]> history(String type, String key, long fromVersion, int limit) {
    return store.history(type, key, fromVersion, limit);
  }

  @Override
  public OptionalLong nextOffset(String topic, int partition) {
    return store.nextOffset(topic, partition);
  }

  @Override
  public SortedMap<Long, byte[]> outboxByOffset(String topic, int partition) {
    return store.outboxByOffset(topic, partition);
  }

  @Override
  public IdempotentWrite idempotentWrite(String type, String key, String idempotencyKey) {
    return store.idempotentWrite(type, key, idempotencyKey);
  }

  @Override
  public long forgetIdempotencyKeys(long recordedBefore) {
    return store.forgetIdempotencyKeys(recordedBefore);
  }

  @Override
  public List<io.kfold.store.IndexScan.Entry> scanIndex(io.kfold.store.IndexScan scan) {
    return store.scanIndex(scan);
  }

  @Override
  public boolean isOpen() {
    return store.isOpen();
  }

  @Override
  public void close() {
    store.close();
  }
}
