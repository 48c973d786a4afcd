package io.kfold.store;

import io.kfold.TestNodes;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * What an index build relies on: a batch that {@link EntityStore#writeFromStates} derives from the
 * states it read is written before any other write can change those states.
 */
class WriteFromStatesTest {

  @Test
  @DisplayName("a write waits while a batch derived from the states it would change is being made, then lands after it")
  void writesWaitForABatchDerivedFromStates() throws Exception {
    ExecutorService threads = Executors.newFixedThreadPool(2);
    CountDownLatch release = new CountDownLatch(1);
    try (RocksEntityStore store = new RocksEntityStore(TestNodes.tempDir("write-from-states"))) {
      store.write(new StoreBatch().putState("t", "k", state(1, "old")));
      CountDownLatch read = new CountDownLatch(1);
      Future<List<EntityStore.KeyedState>> derived = threads.submit(() -> store.writeFromStates("t", null, 10, states -> {
        read.countDown();
        try {
          release.await(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          throw new IllegalStateException(e);
        }
        return new StoreBatch().putIndexEntry("t", "v", states.get(0).entity().state(), "k");
      }));
      assertThat(read.await(30, TimeUnit.SECONDS)).isTrue();

      AtomicReference<Thread> writer = new AtomicReference<>();
      Future<?> change = threads.submit(() -> {
        writer.set(Thread.currentThread());
        store.write(new StoreBatch().putState("t", "k", state(2, "new"))
            .deleteIndexEntry("t", "v", bytes("old"), "k").putIndexEntry("t", "v", bytes("new"), "k"));
      });
      // The change either waits on the store's lock (its thread blocks) or, without one, is written at once.
      long deadline = System.currentTimeMillis() + 30_000;
      while (!change.isDone() && (writer.get() == null || writer.get().getState() != Thread.State.BLOCKED)) {
        assertThat(System.currentTimeMillis()).as("the change neither blocked nor finished").isLessThan(deadline);
        Thread.sleep(5);
      }
      assertThat(change.isDone()).as("a write done while a batch derived from the states was still being made").isFalse();

      release.countDown();
      assertThat(derived.get(30, TimeUnit.SECONDS)).extracting(EntityStore.KeyedState::key).containsExactly("k");
      change.get(30, TimeUnit.SECONDS);
      assertThat(store.scanIndex(new IndexScan("t", "v", null, null, null, 10, false)))
          .extracting(entry -> new String(entry.value(), StandardCharsets.UTF_8))
          .as("entries once both are written: the change's, none of the state it replaced").containsExactly("new");
    } finally {
      release.countDown();  // a failed check must not leave the derived batch waiting under the store's close
      threads.shutdownNow();
    }
  }

  private static StoredEntity state(long version, String value) {
    return new StoredEntity(version, version, null, bytes(value));  // the store holds any bytes
  }

  private static byte[] bytes(String text) {
    return text.getBytes(StandardCharsets.UTF_8);
  }
}
