package io.kfold.store;

import org.rocksdb.BlockBasedTableConfig;
import org.rocksdb.ColumnFamilyDescriptor;
import org.rocksdb.ColumnFamilyHandle;
import org.rocksdb.ColumnFamilyOptions;
import org.rocksdb.CompressionType;
import org.rocksdb.DBOptions;
import org.rocksdb.FlushOptions;
import org.rocksdb.LRUCache;
import org.rocksdb.ReadOptions;
import org.rocksdb.RocksDB;
import org.rocksdb.RocksDBException;
import org.rocksdb.RocksIterator;
import org.rocksdb.Snapshot;
import org.rocksdb.TableProperties;
import org.rocksdb.WriteBatch;
import org.rocksdb.WriteBufferManager;
import org.rocksdb.WriteOptions;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * {@link EntityStore} on RocksDB, one column family per kind of data.
 *
 * <p>Writes go through the write-ahead log without fsync: a killed process loses nothing (the
 * operating system still holds the log), a power cut may lose the last writes, which the fold then
 * reads again from Kafka because their offsets were lost with them.
 *
 * <p>RocksDB aborts the process when a call reaches a native handle that was already freed, so every
 * call goes between {@link #enter} and {@link #leave}: once {@link #close} began, a call fails with
 * a {@link StoreException} instead, and close frees the handles only after the calls in progress (an
 * idempotency sweep, a read on a worker thread) have returned.
 *
 * <p>Its native memory stays within one budget: a single block cache for every column family holds
 * the data blocks read, their index and filter blocks, and (through a write buffer manager charged to
 * it) the memtables. Otherwise each column family's memtables and each open file's index would grow
 * on their own, beside the cache, with the number of column families and the size of the store.
 */
public final class RocksEntityStore implements EntityStore {

  static {
    RocksDB.loadLibrary();
  }

  private static final Logger LOG = LoggerFactory.getLogger(RocksEntityStore.class);

  private static final byte[] STATES = "states".getBytes(StandardCharsets.UTF_8);
  private static final byte[] EVENTS = "events".getBytes(StandardCharsets.UTF_8);
  private static final byte[] OFFSETS = "offsets".getBytes(StandardCharsets.UTF_8);
  private static final byte[] OUTBOX = "outbox".getBytes(StandardCharsets.UTF_8);
  private static final byte[] IDEMPOTENCY = "idempotency".getBytes(StandardCharsets.UTF_8);
  private static final byte[] INDEXES = "indexes".getBytes(StandardCharsets.UTF_8);
  private static final byte[] INDEX_BUILDS = "index_builds".getBytes(StandardCharsets.UTF_8);
  private static final byte[] NO_VALUE = new byte[0];

  /** The budget of a store opened without one. */
  public static final long DEFAULT_MEMORY_BYTES = 256L * 1024 * 1024;
  /** Below this, a memtable would be flushed every few hundred writes. */
  private static final long MIN_MEMORY_BYTES = 16L * 1024 * 1024;
  private static final long MAX_WRITE_BUFFER_BYTES = 32L * 1024 * 1024;

  private final Path path;
  private final LRUCache blockCache;
  private final WriteBufferManager writeBuffers;
  private final ColumnFamilyOptions columnOptions;
  private final DBOptions dbOptions;
  private final WriteOptions writeOptions;
  private final ReadOptions readOptions;
  private final RocksDB db;
  private final List<ColumnFamilyHandle> handles = new ArrayList<>();
  private final ColumnFamilyHandle states;
  private final ColumnFamilyHandle events;
  private final ColumnFamilyHandle offsets;
  private final ColumnFamilyHandle outbox;
  private final ColumnFamilyHandle idempotency;
  /** Index entries: (type, index, value, key) → nothing; see {@link #indexKey}. */
  private final ColumnFamilyHandle indexes;
  /** Per (type, index), the {@link IndexBuild} record of its entries; key as {@link #indexPrefix}. */
  private final ColumnFamilyHandle indexBuilds;
  /**
   * Held by every write, and by {@link #writeFromStates} from its read to its write: a batch derived
   * from states is written before any other write can change them.
   */
  private final Object writeLock = new Object();
  /**
   * The calls in progress, plus {@link #CLOSED} once close began: one atomic add per call. A plain
   * open flag would let close free the handles under a call that had read the flag a moment before.
   */
  private final AtomicLong callsInProgress = new AtomicLong();
  private static final long CLOSED = 1L << 62;
  /** Where close waits for the last call in progress to leave. */
  private final Object lastCallLeft = new Object();
  /**
   * Per partition, the offset below which its outbox holds nothing: each clear deletes from there on.
   * RocksDB keeps every cleared range as a range deletion until compaction, and many overlapping
   * ones (a clear from offset 0 per small fold batch) made a flush grow without bound.
   */
  private final Map<OutboxPartition, Long> outboxEmptyBelow = new ConcurrentHashMap<>();

  private record OutboxPartition(String topic, int partition) {}

  public RocksEntityStore(Path path) {
    this(path, DEFAULT_MEMORY_BYTES);
  }

  /**
   * A store whose block cache, index and filter blocks and memtables together stay within
   * {@code memoryBytes} (RocksDB may pass it briefly while a flush catches up).
   */
  public RocksEntityStore(Path path, long memoryBytes) {
    if (memoryBytes < MIN_MEMORY_BYTES) {
      throw new IllegalArgumentException("store memory " + memoryBytes + " bytes: at least " + MIN_MEMORY_BYTES);
    }
    this.path = path;
    // A tenth kept for index and filter blocks (high priority), so that a scan of data blocks cannot evict them.
    blockCache = new LRUCache(memoryBytes, -1, false, 0.1);
    // Half the budget for memtables, half for what reads bring in. The fold writes to several column
    // families at once (states, events, offsets, outbox): each memtable gets at most a quarter of the
    // memtables' share, so that they fill up before the manager makes them all flush early.
    long memtableBytes = memoryBytes / 2;
    writeBuffers = new WriteBufferManager(memtableBytes, blockCache);
    columnOptions = new ColumnFamilyOptions()
        .setWriteBufferSize(Math.min(MAX_WRITE_BUFFER_BYTES, memtableBytes / 4))
        .setCompressionType(CompressionType.LZ4_COMPRESSION)
        .setTableFormatConfig(new BlockBasedTableConfig()
            .setBlockCache(blockCache)
            // Without these, every open file keeps its index in memory outside the budget: it grows with the store.
            .setCacheIndexAndFilterBlocks(true)
            .setCacheIndexAndFilterBlocksWithHighPriority(true)
            // Level 0 files are read on every miss: their index stays pinned rather than read again.
            .setPinL0FilterAndIndexBlocksInCache(true));
    dbOptions = new DBOptions().setCreateIfMissing(true).setCreateMissingColumnFamilies(true)
        .setWriteBufferManager(writeBuffers);
    writeOptions = new WriteOptions();
    readOptions = new ReadOptions();
    List<ColumnFamilyDescriptor> descriptors = List.of(
        new ColumnFamilyDescriptor(RocksDB.DEFAULT_COLUMN_FAMILY, columnOptions),
        new ColumnFamilyDescriptor(STATES, columnOptions),
        new ColumnFamilyDescriptor(EVENTS, columnOptions),
        new ColumnFamilyDescriptor(OFFSETS, columnOptions),
        new ColumnFamilyDescriptor(OUTBOX, columnOptions),
        new ColumnFamilyDescriptor(IDEMPOTENCY, columnOptions),
        new ColumnFamilyDescriptor(INDEXES, columnOptions),
        new ColumnFamilyDescriptor(INDEX_BUILDS, columnOptions));
    try {
      Files.createDirectories(path);
      db = RocksDB.open(dbOptions, path.toString(), descriptors, handles);
    } catch (Exception e) {
      closeOptions();
      throw new StoreException("cannot open store " + path + ": " + e.getMessage(), e);
    }
    states = handles.get(1);
    events = handles.get(2);
    offsets = handles.get(3);
    outbox = handles.get(4);
    idempotency = handles.get(5);
    indexes = handles.get(6);
    indexBuilds = handles.get(7);
  }

  @Override
  public StoredEntity get(String type, String key) {
    enter("read a state");
    try {
      return decodeEntity(db.get(states, readOptions, entityKey(type, key)));
    } catch (RocksDBException e) {
      throw failure("read state of " + type + "/" + key, e);
    } finally {
      leave();
    }
  }

  @Override
  public List<StoredEntity> getAll(String type, List<String> keys) {
    List<byte[]> rawKeys = new ArrayList<>(keys.size());
    List<ColumnFamilyHandle> columns = new ArrayList<>(keys.size());
    for (String key : keys) {
      rawKeys.add(entityKey(type, key));
      columns.add(states);
    }
    enter("read states");
    try {
      List<byte[]> values = db.multiGetAsList(readOptions, columns, rawKeys);
      List<StoredEntity> result = new ArrayList<>(values.size());
      for (byte[] value : values) {
        result.add(decodeEntity(value));
      }
      return result;
    } catch (RocksDBException e) {
      throw failure("read " + keys.size() + " states of " + type, e);
    } finally {
      leave();
    }
  }

  @Override
  public List<byte[]> history(String type, String key, long fromVersion, int limit) {
    byte[] prefix = entityKey(type, key);
    List<byte[]> result = new ArrayList<>();
    enter("read a history");
    try (RocksIterator it = db.newIterator(events, readOptions)) {
      for (it.seek(withLong(prefix, Math.max(fromVersion, 0))); it.isValid() && result.size() < limit; it.next()) {
        if (!startsWith(it.key(), prefix)) {
          break;
        }
        result.add(it.value());
      }
      it.status();
    } catch (RocksDBException e) {
      throw failure("read history of " + type + "/" + key, e);
    } finally {
      leave();  // after the iterator is closed
    }
    return result;
  }

  @Override
  public OptionalLong nextOffset(String topic, int partition) {
    enter("read an offset");
    try {
      byte[] value = db.get(offsets, readOptions, partitionKey(topic, partition));
      return value == null ? OptionalLong.empty() : OptionalLong.of(ByteBuffer.wrap(value).getLong());
    } catch (RocksDBException e) {
      throw failure("read offset of " + topic + "-" + partition, e);
    } finally {
      leave();
    }
  }

  @Override
  public SortedMap<Long, byte[]> outboxByOffset(String topic, int partition) {
    byte[] prefix = partitionKey(topic, partition);
    SortedMap<Long, byte[]> result = new TreeMap<>();
    enter("read an outbox");
    try (RocksIterator it = db.newIterator(outbox, readOptions)) {
      for (it.seek(prefix); it.isValid() && startsWith(it.key(), prefix); it.next()) {
        result.put(ByteBuffer.wrap(it.key()).getLong(prefix.length), it.value());
      }
      it.status();
    } catch (RocksDBException e) {
      throw failure("read outbox of " + topic + "-" + partition, e);
    } finally {
      leave();
    }
    return result;
  }

  @Override
  public IdempotentWrite idempotentWrite(String type, String key, String idempotencyKey) {
    enter("read an idempotency key");
    try {
      byte[] value = db.get(idempotency, readOptions, idempotencyKey(type, key, idempotencyKey));
      if (value == null) {
        return null;
      }
      ByteBuffer buffer = ByteBuffer.wrap(value);
      // Records written before offsets were kept are 24 bytes long.
      return new IdempotentWrite(buffer.getLong(), buffer.getLong(), buffer.getLong(),
          buffer.remaining() >= 8 ? buffer.getLong() : -1);
    } catch (RocksDBException e) {
      throw failure("read idempotency key of " + type + "/" + key, e);
    } finally {
      leave();
    }
  }

  @Override
  public long forgetIdempotencyKeys(long recordedBefore) {
    long forgotten = 0;
    enter("forget idempotency keys");
    try (RocksIterator it = db.newIterator(idempotency, readOptions); WriteBatch deletes = new WriteBatch()) {
      for (it.seekToFirst(); it.isValid(); it.next()) {
        if (ByteBuffer.wrap(it.value()).getLong(16) < recordedBefore) {
          deletes.delete(idempotency, it.key());
          forgotten++;
        }
      }
      it.status();
      db.write(writeOptions, deletes);
    } catch (RocksDBException e) {
      throw failure("forget idempotency keys", e);
    } finally {
      leave();
    }
    return forgotten;
  }

  @Override
  public List<IndexScan.Entry> scanIndex(IndexScan scan) {
    byte[] prefix = indexPrefix(scan.type(), scan.index());
    byte[] start = scan.from() == null ? prefix : concat(prefix, escape(scan.from()));
    byte[] afterKey = scan.after() == null ? null : indexKey(scan.type(), scan.index(), scan.after().value(), scan.after().key());
    if (afterKey != null && Arrays.compareUnsigned(afterKey, start) >= 0) {
      start = afterKey;
    }
    // Every key of a value at or above 'to' is at or above prefix + escape(to): see escape.
    byte[] end = scan.to() == null ? null : concat(prefix, escape(scan.to()));
    List<IndexScan.Entry> found = new ArrayList<>();
    enter("scan an index");
    Snapshot snapshot = db.getSnapshot();
    try (ReadOptions atSnapshot = new ReadOptions().setSnapshot(snapshot);
         RocksIterator it = db.newIterator(indexes, atSnapshot)) {
      for (it.seek(start); it.isValid() && found.size() < scan.limit(); it.next()) {
        byte[] key = it.key();
        if (!startsWith(key, prefix) || (end != null && Arrays.compareUnsigned(key, end) >= 0)) {
          break;
        }
        if (afterKey != null && Arrays.equals(key, afterKey)) {
          continue;
        }
        found.add(decodeIndexKey(key, prefix.length));
      }
      it.status();
      if (scan.withStates() && !found.isEmpty()) {
        List<byte[]> keys = new ArrayList<>(found.size());
        List<ColumnFamilyHandle> columns = new ArrayList<>(found.size());
        for (IndexScan.Entry entry : found) {
          keys.add(entityKey(scan.type(), entry.key()));
          columns.add(states);
        }
        List<byte[]> values = db.multiGetAsList(atSnapshot, columns, keys);
        for (int i = 0; i < found.size(); i++) {
          IndexScan.Entry entry = found.get(i);
          found.set(i, new IndexScan.Entry(entry.value(), entry.key(), decodeEntity(values.get(i))));
        }
      }
    } catch (RocksDBException e) {
      throw failure("scan index '" + scan.index() + "' of " + scan.type(), e);
    } finally {
      db.releaseSnapshot(snapshot);
      leave();
    }
    return found;
  }

  @Override
  public void write(StoreBatch batch) {
    enter("write a batch");
    try {
      synchronized (writeLock) {
        writeEntered(batch);
      }
    } finally {
      leave();
    }
  }

  @Override
  public List<KeyedState> writeFromStates(String type, String afterKey, int limit,
                                          java.util.function.Function<List<KeyedState>, StoreBatch> batchFor) {
    byte[] prefix = typePrefix(type);
    byte[] after = afterKey == null ? null : entityKey(type, afterKey);
    List<KeyedState> found = new ArrayList<>();
    enter("read states to write from");
    try {
      synchronized (writeLock) {
        try (RocksIterator it = db.newIterator(states, readOptions)) {
          for (it.seek(after == null ? prefix : after); it.isValid() && found.size() < limit; it.next()) {
            byte[] key = it.key();
            if (!startsWith(key, prefix)) {
              break;
            }
            if (after != null && Arrays.equals(key, after)) {
              continue;
            }
            found.add(new KeyedState(decodeEntityKey(key, 0)[1], decodeEntity(it.value())));
          }
          it.status();
        } catch (RocksDBException e) {
          throw failure("read states of " + type, e);
        }
        writeEntered(batchFor.apply(found));
      }
    } finally {
      leave();
    }
    return found;
  }

  @Override
  public long countStates(String type) {
    byte[] prefix = typePrefix(type);
    long count = 0;
    enter("count states");
    try (RocksIterator it = db.newIterator(states, readOptions)) {
      for (it.seek(prefix); it.isValid() && startsWith(it.key(), prefix); it.next()) {
        count++;
      }
      it.status();
    } catch (RocksDBException e) {
      throw failure("count states of " + type, e);
    } finally {
      leave();
    }
    return count;
  }

  @Override
  public List<IndexBuild> indexBuilds() {
    List<IndexBuild> found = new ArrayList<>();
    enter("read index builds");
    try (RocksIterator it = db.newIterator(indexBuilds, readOptions)) {
      for (it.seekToFirst(); it.isValid(); it.next()) {
        String[] typeAndIndex = decodeEntityKey(it.key(), 0);
        found.add(decodeIndexBuild(typeAndIndex[0], typeAndIndex[1], it.value()));
      }
      it.status();
    } catch (RocksDBException e) {
      throw failure("read index builds", e);
    } finally {
      leave();
    }
    return found;
  }

  @Override
  public IndexBuild indexBuild(String type, String index) {
    enter("read an index build");
    try {
      byte[] value = db.get(indexBuilds, readOptions, indexPrefix(type, index));
      return value == null ? null : decodeIndexBuild(type, index, value);
    } catch (RocksDBException e) {
      throw failure("read the build of index '" + index + "' of " + type, e);
    } finally {
      leave();
    }
  }

  /** Writes a batch; the caller has entered and holds the write lock. */
  private void writeEntered(StoreBatch batch) {
    Map<OutboxPartition, Long> batchEmptyBelow = new HashMap<>();  // this batch's, kept once it is written
    try (WriteBatch writes = new WriteBatch()) {
      for (StoreBatch.Change change : batch.changes) {
        if (change instanceof StoreBatch.PutState s) {
          writes.put(states, entityKey(s.type(), s.key()), encodeEntity(s.entity()));
        } else if (change instanceof StoreBatch.PutEvent e) {
          writes.put(events, withLong(entityKey(e.type(), e.key()), e.version()), e.event());
        } else if (change instanceof StoreBatch.PutOffset o) {
          writes.put(offsets, partitionKey(o.topic(), o.partition()), ByteBuffer.allocate(8).putLong(o.nextOffset()).array());
        } else if (change instanceof StoreBatch.PutOutbox o) {
          OutboxPartition partition = new OutboxPartition(o.topic(), o.partition());
          if (o.offset() < emptyBelow(partition, batchEmptyBelow)) {
            batchEmptyBelow.put(partition, o.offset());
          }
          writes.put(outbox, withLong(partitionKey(o.topic(), o.partition()), o.offset()), o.record());
        } else if (change instanceof StoreBatch.PutIdempotentWrite i) {
          writes.put(idempotency, idempotencyKey(i.type(), i.key(), i.idempotencyKey()), encodeIdempotentWrite(i.write()));
        } else if (change instanceof StoreBatch.PutIndexEntry i) {
          writes.put(indexes, indexKey(i.type(), i.index(), i.value(), i.key()), NO_VALUE);
        } else if (change instanceof StoreBatch.DeleteIndexEntry i) {
          writes.delete(indexes, indexKey(i.type(), i.index(), i.value(), i.key()));
        } else if (change instanceof StoreBatch.PutIndexBuild b) {
          writes.put(indexBuilds, indexPrefix(b.build().type(), b.build().index()), encodeIndexBuild(b.build()));
        } else if (change instanceof StoreBatch.DeleteIndex d) {
          byte[] prefix = indexPrefix(d.type(), d.index());
          writes.deleteRange(indexes, prefix, prefixEnd(prefix));
          writes.delete(indexBuilds, prefix);
        } else if (change instanceof StoreBatch.PutChangelogItem c) {
          writes.put(columnOf(c.item()), c.item().storeKey(), c.item().value());
        } else if (change instanceof StoreBatch.ClearOutbox c) {
          OutboxPartition partition = new OutboxPartition(c.topic(), c.partition());
          long from = emptyBelow(partition, batchEmptyBelow);
          if (c.beforeOffset() > from) {
            byte[] prefix = partitionKey(c.topic(), c.partition());
            writes.deleteRange(outbox, withLong(prefix, from), withLong(prefix, c.beforeOffset()));
            batchEmptyBelow.put(partition, c.beforeOffset());
          }
        }
      }
      db.write(writeOptions, writes);
      outboxEmptyBelow.putAll(batchEmptyBelow);
    } catch (RocksDBException e) {
      throw failure("write a batch of " + batch.changes.size() + " changes", e);
    }
  }

  /** Where a partition's outbox is empty below: as this batch leaves it so far, else as the store has it. */
  private long emptyBelow(OutboxPartition partition, Map<OutboxPartition, Long> batchEmptyBelow) {
    Long inBatch = batchEmptyBelow.get(partition);
    return inBatch != null ? inBatch : outboxEmptyBelow.getOrDefault(partition, 0L);
  }

  /** The size of the index blocks of the states' files; for tests of where they are kept. */
  long indexBlockBytes() {
    enter("read table properties");
    try {
      return db.getPropertiesOfAllTables(states).values().stream().mapToLong(TableProperties::getIndexSize).sum();
    } catch (RocksDBException e) {
      throw failure("read table properties", e);
    } finally {
      leave();
    }
  }

  /** Writes every column's memtable to disk and waits for it; for tests of what a flush must cope with. */
  void flush() {
    enter("flush");
    try (FlushOptions wait = new FlushOptions().setWaitForFlush(true)) {
      db.flush(wait, handles);
    } catch (RocksDBException e) {
      throw failure("flush", e);
    } finally {
      leave();
    }
  }

  /**
   * The memory budget as RocksDB applies it: the capacity of the block cache that the store's column
   * families read through.
   */
  public long memoryBudgetBytes() {
    return longProperty("rocksdb.block-cache-capacity");
  }

  /**
   * What the budget holds now: cached blocks, and the memtables that the write buffer manager charges
   * to the cache.
   */
  public long memoryUsedBytes() {
    return longProperty("rocksdb.block-cache-usage");
  }

  /** A numeric property of the store (RocksDB's names), as the states column family sees it. */
  long longProperty(String name) {
    enter("read a property");
    try {
      return db.getLongProperty(states, name);
    } catch (RocksDBException e) {
      throw failure("read " + name, e);
    } finally {
      leave();
    }
  }

  /** RocksDB's figures summed over the column families; the block cache is shared by them all. */
  @Override
  public Map<String, Double> usage() {
    enter("read its usage");
    try {
      return Map.of(
          "estimated.keys", (double) db.getAggregatedLongProperty("rocksdb.estimate-num-keys"),
          "memtable.bytes", (double) db.getAggregatedLongProperty("rocksdb.cur-size-all-mem-tables"),
          "block.cache.bytes", (double) blockCache.getUsage(),
          "live.sst.bytes", (double) db.getAggregatedLongProperty("rocksdb.live-sst-files-size"),
          "pending.compaction.bytes", (double) db.getAggregatedLongProperty("rocksdb.estimate-pending-compaction-bytes"));
    } catch (RocksDBException e) {
      throw failure("read its usage", e);
    } finally {
      leave();
    }
  }

  @Override
  public boolean isOpen() {
    return callsInProgress.get() < CLOSED;
  }

  /**
   * Refuses new calls, waits for those in progress, then frees the native handles in reverse order
   * of creation. A second call does nothing.
   */
  @Override
  public synchronized void close() {
    if (!isOpen()) {
      return;
    }
    callsInProgress.addAndGet(CLOSED);
    awaitCallsInProgress();
    for (ColumnFamilyHandle handle : handles) {
      handle.close();
    }
    db.close();
    closeOptions();
  }

  private void awaitCallsInProgress() {
    boolean interrupted = false;
    long since = System.nanoTime();
    long warnAtMs = 10_000;
    synchronized (lastCallLeft) {
      while (callsInProgress.get() != CLOSED) {
        try {
          lastCallLeft.wait(1000);
        } catch (InterruptedException e) {
          // The handles must not be freed under a running call whatever happens: wait on, then
          // hand the interrupt back.
          interrupted = true;
        }
        long waitedMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - since);
        if (waitedMs >= warnAtMs) {
          LOG.warn("store {}: close has waited {} s for {} call(s) in progress", path, waitedMs / 1000,
              callsInProgress.get() - CLOSED);
          warnAtMs += 10_000;
        }
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
  }

  /**
   * Every call starts here, and may use the native handles until its {@link #leave}. {@code what}
   * is a constant: nothing is built for the message on the way in.
   */
  private void enter(String what) {
    if (callsInProgress.incrementAndGet() >= CLOSED) {
      leave();
      throw new StoreException("store " + path + " is closed: cannot " + what, null);
    }
  }

  private void leave() {
    if (callsInProgress.decrementAndGet() == CLOSED) {
      synchronized (lastCallLeft) {
        lastCallLeft.notifyAll();
      }
    }
  }

  private void closeOptions() {
    readOptions.close();
    writeOptions.close();
    dbOptions.close();
    columnOptions.close();
    writeBuffers.close();
    blockCache.close();
  }

  private StoreException failure(String what, RocksDBException e) {
    return new StoreException("store " + path + ": cannot " + what + ": " + e.getMessage(), e);
  }

  // Keys are length-prefixed so that no type or entity id can run into the next part.

  static byte[] entityKey(String type, String key) {
    byte[] t = type.getBytes(StandardCharsets.UTF_8);
    byte[] k = key.getBytes(StandardCharsets.UTF_8);
    return ByteBuffer.allocate(4 + t.length + k.length)
        .putShort((short) t.length).put(t).putShort((short) k.length).put(k).array();
  }

  /** The type and key of {@link #entityKey}, read from {@code bytes} at {@code offset}. */
  static String[] decodeEntityKey(byte[] bytes, int offset) {
    ByteBuffer buffer = ByteBuffer.wrap(bytes, offset, bytes.length - offset);
    int typeLength = buffer.getShort() & 0xffff;
    String type = new String(bytes, offset + 2, typeLength, StandardCharsets.UTF_8);
    buffer.position(offset + 2 + typeLength);
    int keyLength = buffer.getShort() & 0xffff;
    return new String[] {type, new String(bytes, offset + 4 + typeLength, keyLength, StandardCharsets.UTF_8)};
  }

  /** The start of every state key of a type. */
  private static byte[] typePrefix(String type) {
    byte[] t = type.getBytes(StandardCharsets.UTF_8);
    return ByteBuffer.allocate(2 + t.length).putShort((short) t.length).put(t).array();
  }

  /** The first key after every key that starts with {@code prefix}. */
  static byte[] prefixEnd(byte[] prefix) {
    byte[] end = prefix.clone();
    for (int i = end.length - 1; i >= 0; i--) {
      if (end[i] != (byte) 0xFF) {
        end[i]++;
        return Arrays.copyOf(end, i + 1);
      }
    }
    throw new IllegalArgumentException("no key follows a prefix of 0xFF bytes only");
  }

  /** The type and the index, length-prefixed: no index of one type shares a prefix with another's. */
  static byte[] indexPrefix(String type, String index) {
    byte[] t = type.getBytes(StandardCharsets.UTF_8);
    byte[] i = index.getBytes(StandardCharsets.UTF_8);
    return ByteBuffer.allocate(4 + t.length + i.length)
        .putShort((short) t.length).put(t).putShort((short) i.length).put(i).array();
  }

  /**
   * An index entry: the prefix, the value escaped and terminated, then the entity's key to the end.
   * Keys sort by value (bytes, unsigned), then by entity key, so that one value's entities, or a
   * range of values, are one run of keys, and a scan can resume after any (value, key).
   */
  static byte[] indexKey(String type, String index, byte[] value, String key) {
    return concat(indexPrefix(type, index), escape(value), TERMINATOR, key.getBytes(StandardCharsets.UTF_8));
  }

  private static final byte[] TERMINATOR = {0x00, 0x01};

  /**
   * A value made safe to be followed by more key: each 0x00 becomes 0x00 0xFF, and the value ends
   * with 0x00 0x01 (added by {@link #indexKey}). It keeps the values' order: at the end of a value,
   * 0x00 0x01 is below anything a longer value can go on with (a byte from 0x01, or 0x00 0xFF), so
   * a value sorts before its extensions, as bytes do. So every key of a value at or above {@code v}
   * is at or above prefix + escape(v).
   */
  static byte[] escape(byte[] value) {
    int zeros = 0;
    for (byte b : value) {
      if (b == 0) {
        zeros++;
      }
    }
    if (zeros == 0) {
      return value;
    }
    byte[] escaped = new byte[value.length + zeros];
    int at = 0;
    for (byte b : value) {
      escaped[at++] = b;
      if (b == 0) {
        escaped[at++] = (byte) 0xFF;
      }
    }
    return escaped;
  }

  private static IndexScan.Entry decodeIndexKey(byte[] key, int from) {
    java.io.ByteArrayOutputStream value = new java.io.ByteArrayOutputStream();
    int at = from;
    while (true) {
      if (key[at] == 0) {
        if (key[at + 1] == 0x01) {
          break;
        }
        value.write(0);  // an escaped 0x00, followed by its 0xFF
        at += 2;
      } else {
        value.write(key[at++]);
      }
    }
    at += 2;
    return new IndexScan.Entry(value.toByteArray(), new String(key, at, key.length - at, StandardCharsets.UTF_8), null);
  }

  private static byte[] concat(byte[]... parts) {
    int length = 0;
    for (byte[] part : parts) {
      length += part.length;
    }
    ByteBuffer out = ByteBuffer.allocate(length);
    for (byte[] part : parts) {
      out.put(part);
    }
    return out.array();
  }

  static byte[] idempotencyKey(String type, String key, String idempotencyKey) {
    byte[] entity = entityKey(type, key);
    byte[] k = idempotencyKey.getBytes(StandardCharsets.UTF_8);
    return ByteBuffer.allocate(entity.length + 2 + k.length).put(entity).putShort((short) k.length).put(k).array();
  }

  static byte[] partitionKey(String topic, int partition) {
    byte[] t = topic.getBytes(StandardCharsets.UTF_8);
    return ByteBuffer.allocate(2 + t.length + 4).putShort((short) t.length).put(t).putInt(partition).array();
  }

  /** The prefix followed by a big-endian long, so that keys sort by the number. */
  static byte[] withLong(byte[] prefix, long value) {
    return ByteBuffer.allocate(prefix.length + 8).put(prefix).putLong(value).array();
  }

  private static boolean startsWith(byte[] key, byte[] prefix) {
    return key.length >= prefix.length && Arrays.equals(key, 0, prefix.length, prefix, 0, prefix.length);
  }

  static byte[] encodeIdempotentWrite(IdempotentWrite write) {
    return ByteBuffer.allocate(32).putLong(write.firstVersion()).putLong(write.lastVersion()).putLong(write.recordedAt())
        .putLong(write.lastOffset()).array();
  }

  private static byte[] encodeIndexBuild(IndexBuild build) {
    byte[] definition = build.definition().getBytes(StandardCharsets.UTF_8);
    byte[] upTo = build.builtUpTo() == null ? null : build.builtUpTo().getBytes(StandardCharsets.UTF_8);
    ByteBuffer out = ByteBuffer.allocate(2 + definition.length + 1 + 1 + 2 + (upTo == null ? 0 : upTo.length) + 16)
        .putShort((short) definition.length).put(definition)
        .put((byte) (build.ready() ? 1 : 0))
        .put((byte) (upTo == null ? 0 : 1)).putShort((short) (upTo == null ? 0 : upTo.length));
    if (upTo != null) {
      out.put(upTo);
    }
    return out.putLong(build.built()).putLong(build.entities()).array();
  }

  private static IndexBuild decodeIndexBuild(String type, String index, byte[] value) {
    ByteBuffer in = ByteBuffer.wrap(value);
    byte[] definition = new byte[in.getShort() & 0xffff];
    in.get(definition);
    boolean ready = in.get() == 1;
    boolean hasUpTo = in.get() == 1;
    byte[] upTo = new byte[in.getShort() & 0xffff];
    in.get(upTo);
    return new IndexBuild(type, index, new String(definition, StandardCharsets.UTF_8), ready,
        hasUpTo ? new String(upTo, StandardCharsets.UTF_8) : null, in.getLong(), in.getLong());
  }

  private ColumnFamilyHandle columnOf(ChangelogItem item) {
    return switch (item.kind()) {
      case ChangelogItem.STATE -> states;
      case ChangelogItem.EVENT -> events;
      case ChangelogItem.IDEMPOTENT_WRITE -> idempotency;
      case ChangelogItem.NEXT_OFFSET -> offsets;
      default -> throw new StoreException("not a changelog item of this store: kind " + item.kind(), null);
    };
  }

  static byte[] encodeEntity(StoredEntity entity) {
    byte[] command = entity.lastCommandId() == null ? new byte[0] : entity.lastCommandId().getBytes(StandardCharsets.UTF_8);
    return ByteBuffer.allocate(8 + 8 + 2 + command.length + entity.state().length)
        .putLong(entity.version()).putLong(entity.sourceOffset()).putShort((short) command.length).put(command)
        .put(entity.state()).array();
  }

  static StoredEntity decodeEntity(byte[] value) {
    if (value == null) {
      return null;
    }
    ByteBuffer buffer = ByteBuffer.wrap(value);
    long version = buffer.getLong();
    long sourceOffset = buffer.getLong();
    int commandLength = buffer.getShort() & 0xffff;
    String command = commandLength == 0 ? null : new String(value, 18, commandLength, StandardCharsets.UTF_8);
    byte[] state = Arrays.copyOfRange(value, 18 + commandLength, value.length);
    return new StoredEntity(version, sourceOffset, command, state);
  }
}
