package io.kfold.store;

import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.vertx.core.Vertx;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/** The store's native memory stays within one budget, the one the node's configuration gives. */
@ExtendWith(TestBroker.class)
class StoreMemoryTest {

  private static final long MIB = 1024 * 1024;

  @Test
  @DisplayName("the block cache has the budget's capacity, and the memtables count against it")
  void memtablesAreChargedToTheBudget() {
    // Not 8 MiB: that is the capacity of the cache RocksDB makes for a table without one.
    try (RocksEntityStore store = new RocksEntityStore(TestNodes.tempDir("store-memory"), 40 * MIB)) {
      assertThat(store.memoryBudgetBytes()).isEqualTo(40 * MIB);
      // 2 MiB of states, never read, less than one memtable holds (a quarter of the budget's half):
      // nothing is flushed, and only the memtable holding them can take room in the cache.
      byte[] state = new byte[4096];
      Arrays.fill(state, (byte) 'x');
      for (int batch = 0; batch < 4; batch++) {
        StoreBatch writes = new StoreBatch();
        for (int i = 0; i < 128; i++) {
          writes.putState("users", "u-" + batch + "-" + i, new StoredEntity(1, i, null, state));
        }
        store.write(writes);
      }
      assertThat(store.memoryUsedBytes()).as("cache usage after 2 MiB written, none read")
          .isGreaterThanOrEqualTo(MIB);
    }
  }

  @Test
  @DisplayName("the index blocks of the store's files are read through the cache, not held beside it")
  void indexBlocksAreCached() {
    Path dir = TestNodes.tempDir("store-memory-index");
    try (RocksEntityStore store = new RocksEntityStore(dir, 40 * MIB)) {
      byte[] state = new byte[100];
      Arrays.fill(state, (byte) 'x');
      for (int batch = 0; batch < 20; batch++) {
        StoreBatch writes = new StoreBatch();
        for (int i = 0; i < 5_000; i++) {
          writes.putState("users", "u-" + batch + "-" + i, new StoredEntity(1, i, null, state));
        }
        store.write(writes);
      }
      store.flush();
    }
    try (RocksEntityStore store = new RocksEntityStore(dir, 40 * MIB)) {
      assertThat(store.get("users", "u-7-77")).isNotNull();
      // What the open files hold beside the cache; their index blocks would be part of it.
      long beside = store.longProperty("rocksdb.estimate-table-readers-mem");
      assertThat(beside).as("table readers' memory outside the cache, against the files' index blocks")
          .isLessThan(store.indexBlockBytes());
    }
  }

  @Test
  @DisplayName("a node's store gets the budget of store.memoryMb")
  void nodeStoreHasTheConfiguredBudget() throws Exception {
    String app = TestNodes.newApp("store-memory");
    Map<String, String> env = TestNodes.env(app, TestNodes.tempDir(app));
    env.put("KFOLD_STORE_MEMORY_MB", "48");
    Vertx vertx = Vertx.vertx();
    try {
      NodeRuntime node = NodeRuntime.start(vertx, NodeConfig.load(env)).await(60, TimeUnit.SECONDS);
      try {
        assertThat(((RocksEntityStore) node.store()).memoryBudgetBytes()).isEqualTo(48 * MIB);
      } finally {
        node.stop().await(60, TimeUnit.SECONDS);
      }
    } finally {
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }
}
