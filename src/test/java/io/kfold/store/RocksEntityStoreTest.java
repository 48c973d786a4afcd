package io.kfold.store;

import io.kfold.TestNodes;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class RocksEntityStoreTest {

  private static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private static String text(byte[] b) {
    return new String(b, StandardCharsets.UTF_8);
  }

  @Test
  @DisplayName("a batch's states, events, offsets and outbox are all there after a reopen")
  void batchSurvivesReopen() {
    Path dir = TestNodes.tempDir("store");
    try (RocksEntityStore store = new RocksEntityStore(dir)) {
      store.write(new StoreBatch()
          .putState("users", "ada", new StoredEntity(2, 7, "cmd-1", bytes("{\"n\":2}")))
          .putEvent("users", "ada", 1, bytes("e1"))
          .putEvent("users", "ada", 2, bytes("e2"))
          .putOffset("app.users.events", 3, 42)
          .putOutbox("app.users.events", 3, 40, bytes("o40"))
          .putOutbox("app.users.events", 3, 41, bytes("o41")));
    }
    try (RocksEntityStore store = new RocksEntityStore(dir)) {
      StoredEntity ada = store.get("users", "ada");
      assertThat(ada.version()).isEqualTo(2);
      assertThat(ada.lastCommandId()).isEqualTo("cmd-1");
      assertThat(text(ada.state())).isEqualTo("{\"n\":2}");
      assertThat(store.history("users", "ada", 1, 10)).extracting(RocksEntityStoreTest::text).containsExactly("e1", "e2");
      assertThat(store.nextOffset("app.users.events", 3)).hasValue(42);
      assertThat(store.nextOffset("app.users.events", 2)).isEmpty();
      assertThat(store.outbox("app.users.events", 3)).extracting(RocksEntityStoreTest::text).containsExactly("o40", "o41");
    }
  }

  @Test
  @DisplayName("histories of entities whose ids share a prefix, or of other types, never mix")
  void historiesAreSeparate() {
    try (RocksEntityStore store = new RocksEntityStore(TestNodes.tempDir("store"))) {
      StoreBatch batch = new StoreBatch();
      for (long v = 1; v <= 5; v++) {
        batch.putEvent("users", "a", v, bytes("a" + v));
        batch.putEvent("users", "ab", v, bytes("ab" + v));
        batch.putEvent("usersx", "a", v, bytes("x" + v));
      }
      store.write(batch);
      assertThat(store.history("users", "a", 1, 100)).extracting(RocksEntityStoreTest::text)
          .containsExactly("a1", "a2", "a3", "a4", "a5");
      assertThat(store.history("users", "a", 3, 2)).extracting(RocksEntityStoreTest::text).containsExactly("a3", "a4");
      assertThat(store.history("users", "b", 1, 100)).isEmpty();
    }
  }

  @Test
  @DisplayName("getAll answers in the order asked, null where an entity has no state")
  void getAllKeepsOrder() {
    try (RocksEntityStore store = new RocksEntityStore(TestNodes.tempDir("store"))) {
      store.write(new StoreBatch()
          .putState("users", "x", new StoredEntity(1, 3, null, bytes("{}")))
          .putState("users", "z", new StoredEntity(3, 4, null, bytes("{}"))));
      List<StoredEntity> got = store.getAll("users", Arrays.asList("z", "y", "x"));
      assertThat(got.get(0).version()).isEqualTo(3);
      assertThat(got.get(1)).isNull();
      assertThat(got.get(2).version()).isEqualTo(1);
      assertThat(got.get(2).lastCommandId()).isNull();
    }
  }

  @Test
  @DisplayName("clearing the outbox forgets only records before the offset, in that partition")
  void clearOutbox() {
    try (RocksEntityStore store = new RocksEntityStore(TestNodes.tempDir("store"))) {
      StoreBatch batch = new StoreBatch();
      for (long offset = 0; offset < 6; offset++) {
        batch.putOutbox("t", 0, offset, bytes("p0-" + offset));
        batch.putOutbox("t", 1, offset, bytes("p1-" + offset));
      }
      store.write(batch);
      store.write(new StoreBatch().clearOutbox("t", 0, 4));
      assertThat(store.outbox("t", 0)).extracting(RocksEntityStoreTest::text).containsExactly("p0-4", "p0-5");
      assertThat(store.outbox("t", 1)).hasSize(6);

      // A record put again below where the last clear ended (a partition folded again from an
      // earlier offset) is still cleared by the next clear.
      store.write(new StoreBatch().putOutbox("t", 0, 2, bytes("p0-2 again")).putOutbox("t", 0, 6, bytes("p0-6")));
      assertThat(store.outbox("t", 0)).extracting(RocksEntityStoreTest::text)
          .containsExactly("p0-2 again", "p0-4", "p0-5", "p0-6");
      store.write(new StoreBatch().clearOutbox("t", 0, 6));
      assertThat(store.outbox("t", 0)).extracting(RocksEntityStoreTest::text).containsExactly("p0-6");
    }
  }

  @Test
  @DisplayName("a flush after 50,000 small fold batches, each clearing the outbox, finishes")
  void flushAfterManyOutboxClears() {
    // The fold clears a partition's outbox after every batch; under small HTTP writes that is a
    // batch of a few events. Clears that overlapped (each from offset 0) once made this flush run
    // on without end while native memory grew by gigabytes.
    RocksEntityStore store = new RocksEntityStore(TestNodes.tempDir("store"));
    long offset = 0;
    for (int batch = 0; batch < 50_000; batch++) {
      StoreBatch writes = new StoreBatch().clearOutbox("t", batch % 4, offset);
      for (int i = 0; i < 8; i++, offset++) {
        writes.putOutbox("t", batch % 4, offset, bytes("change " + offset));
      }
      store.write(writes);
    }
    CompletableFuture<Void> flush = CompletableFuture.runAsync(store::flush);
    // Closing a store while it flushes aborts the JVM: a flush that does not finish leaves it open.
    assertThat(flush).as("the flush (overlapping range deletions?)").succeedsWithin(Duration.ofSeconds(60));
    try (store) {
      assertThat(store.outbox("t", 0)).isNotEmpty().allSatisfy(record -> assertThat(text(record)).startsWith("change 399"));
    }
  }

  @Test
  @DisplayName("close can be called twice; a closed store says so")
  void closeTwice() {
    RocksEntityStore store = new RocksEntityStore(TestNodes.tempDir("store"));
    store.close();
    store.close();
    assertThat(store.isOpen()).isFalse();
  }

  @Test
  @DisplayName("every call on a closed store throws a StoreException naming the store, and touches no native handle")
  void callsAfterCloseThrow() {
    Path dir = TestNodes.tempDir("store");
    RocksEntityStore store = new RocksEntityStore(dir);
    store.write(new StoreBatch().putState("users", "ada", new StoredEntity(1, 0, null, bytes("{}"))));
    store.close();
    List<ThrowingCallable> calls = List.of(
        () -> store.get("users", "ada"),
        () -> store.getAll("users", List.of("ada")),
        () -> store.history("users", "ada", 1, 10),
        () -> store.nextOffset("t", 0),
        () -> store.outbox("t", 0),
        () -> store.outboxByOffset("t", 0),
        () -> store.idempotentWrite("users", "ada", "k"),
        () -> store.forgetIdempotencyKeys(Long.MAX_VALUE),
        () -> store.write(new StoreBatch().putOffset("t", 0, 1)),
        store::flush);
    for (ThrowingCallable call : calls) {
      assertThatThrownBy(call).isInstanceOf(StoreException.class)
          .hasMessageContaining(dir.toString()).hasMessageContaining("closed");
    }
  }

  @Test
  @DisplayName("close waits for a call in progress on another thread before it frees the native handles")
  void closeWaitsForCallsInProgress() throws Exception {
    RocksEntityStore store = new RocksEntityStore(TestNodes.tempDir("store"));
    int keys = 300_000;
    for (int from = 0; from < keys; from += 10_000) {
      StoreBatch batch = new StoreBatch();
      for (int i = from; i < from + 10_000; i++) {
        batch.putIdempotentWrite("users", "u" + i, "key-" + i, new IdempotentWrite(1, 1, 1));
      }
      store.write(batch);
    }
    // The hourly sweep of idempotency keys, running while the node stops.
    CompletableFuture<Long> sweep = new CompletableFuture<>();
    Thread sweeper = new Thread(() -> {
      try {
        sweep.complete(store.forgetIdempotencyKeys(2));
      } catch (Throwable e) {
        sweep.completeExceptionally(e);
      }
    }, "idempotency-sweep");
    sweeper.start();
    long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    while (!inForgetIdempotencyKeys(sweeper) && !sweep.isDone()) {
      assertThat(System.nanoTime()).as("the sweep started within 30 s").isLessThan(deadline);
      Thread.onSpinWait();
    }
    assertThat(sweep).as("the sweep is still running when close is called").isNotDone();

    store.close();

    assertThat(sweep).as("close returned only once the sweep was done").isDone();
    assertThat(sweep.get()).isEqualTo(keys);
    sweeper.join(10_000);
  }

  private static boolean inForgetIdempotencyKeys(Thread thread) {
    return Arrays.stream(thread.getStackTrace()).anyMatch(frame ->
        frame.getClassName().equals(RocksEntityStore.class.getName()) && frame.getMethodName().equals("forgetIdempotencyKeys"));
  }

  @Test
  @DisplayName("a store that cannot open names its folder")
  void openFailureNamesTheStore() {
    Path dir = TestNodes.tempDir("store");
    try (RocksEntityStore first = new RocksEntityStore(dir)) {
      assertThatThrownBy(() -> new RocksEntityStore(dir)).isInstanceOf(StoreException.class).hasMessageContaining(dir.toString());
    }
  }
}
