package io.kfold.log;

import org.apache.kafka.common.errors.TimeoutException;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;

class SupervisorTest {

  /** A loop that records what the supervisor calls and fails on the rounds it is told to. */
  private static final class ScriptedLoop implements ConsumerLoop {
    final List<String> calls = Collections.synchronizedList(new ArrayList<>());
    final AtomicInteger rounds = new AtomicInteger();
    volatile RuntimeException nextFailure;
    final CountDownLatch failedRoundSeen = new CountDownLatch(1);
    final CountDownLatch roundAfterRestart = new CountDownLatch(1);
    final CountDownLatch release = new CountDownLatch(1);

    @Override
    public void open() {
      calls.add("open");
    }

    @Override
    public void runOnce() {
      rounds.incrementAndGet();
      RuntimeException failure = nextFailure;
      if (failure != null) {
        nextFailure = null;
        failedRoundSeen.countDown();
        throw failure;
      }
      if (calls.stream().filter("open"::equals).count() > 1) {
        roundAfterRestart.countDown();
      }
      try {
        release.await(5, TimeUnit.MILLISECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }

    @Override
    public void wakeup() {
      calls.add("wakeup");
    }

    @Override
    public void close(boolean stopping) {
      calls.add(stopping ? "close-for-good" : "close");
    }
  }

  private final Supervisor supervisor = new Supervisor(Clock.systemUTC(), Duration.ofMillis(10), Duration.ofMillis(50));

  @Test
  @DisplayName("a loop that fails is reported down with its error, closed, opened again, and reported up")
  void restartsAFailedLoop() throws Exception {
    ScriptedLoop loop = new ScriptedLoop();
    Supervisor.Running running = supervisor.start("fold", loop);
    awaitState(running, Supervisor.State.UP);

    loop.nextFailure = new IllegalStateException("store fault");
    assertThat(loop.failedRoundSeen.await(10, TimeUnit.SECONDS)).isTrue();
    assertThat(loop.roundAfterRestart.await(10, TimeUnit.SECONDS)).isTrue();
    awaitState(running, Supervisor.State.UP);

    assertThat(running.status().restarts()).isEqualTo(1);
    assertThat(running.status().lastError()).contains("store fault");
    assertThat(loop.calls).containsSubsequence("open", "close", "open");
    assertThat(running.stop(Duration.ofSeconds(10))).isTrue();
    // stop() wakes the loop from the test's thread, which may come after the loop has closed.
    assertThat(loop.calls.stream().filter(call -> !call.equals("wakeup"))).endsWith("close-for-good");
    assertThat(supervisor.loops()).doesNotContainKey("fold");
  }

  @Test
  @DisplayName("a loop stays down, named with its error, while it cannot be opened")
  void reportsALoopThatCannotOpen() throws Exception {
    AtomicInteger opens = new AtomicInteger();
    ConsumerLoop broken = new ConsumerLoop() {
      @Override
      public void open() {
        opens.incrementAndGet();
        throw new IllegalStateException("no such topic");
      }

      @Override
      public void runOnce() {}

      @Override
      public void wakeup() {}

      @Override
      public void close(boolean stopping) {}
    };
    Supervisor.Running running = supervisor.start("effects.order-hook", broken);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (opens.get() < 3 && System.nanoTime() < deadline) {
      Thread.sleep(5);
    }
    assertThat(opens.get()).as("opened again after each failure").isGreaterThanOrEqualTo(3);
    Supervisor.Status status = supervisor.loops().get("effects.order-hook");
    assertThat(status.down()).isTrue();
    assertThat(status.lastError()).contains("no such topic");
    assertThat(running.stop(Duration.ofSeconds(10))).isTrue();
  }

  @Test
  @DisplayName("a retriable error retries the round without closing the loop")
  void retriesRetriableErrors() throws Exception {
    ScriptedLoop loop = new ScriptedLoop();
    Supervisor.Running running = supervisor.start("directory", loop);
    awaitState(running, Supervisor.State.UP);
    loop.nextFailure = new TimeoutException("position timed out");
    assertThat(loop.failedRoundSeen.await(10, TimeUnit.SECONDS)).isTrue();
    int after = loop.rounds.get();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (loop.rounds.get() < after + 3 && System.nanoTime() < deadline) {
      Thread.sleep(5);
    }
    awaitState(running, Supervisor.State.UP);
    assertThat(loop.calls).containsExactly("open");
    assertThat(running.status().restarts()).isZero();
    assertThat(running.stop(Duration.ofSeconds(10))).isTrue();
  }

  @Test
  @DisplayName("after failures that Kafka being unreachable caused, however many in a row, the loop tries again within a second; after others the backoff keeps growing")
  void backoffAfterAnUnreachableBrokerStaysShort() {
    Supervisor defaults = new Supervisor();
    RuntimeException transactionTimedOut = new IllegalStateException("the fold's transaction failed",
        new TimeoutException("Timeout expired after 60000ms while awaiting EndTxn(true)"));
    RuntimeException storeFault = new IllegalStateException("store fault");
    assertThat(defaults.backoffMillis(1, transactionTimedOut)).isEqualTo(100);
    assertThat(defaults.backoffMillis(20, transactionTimedOut)).isEqualTo(1000);
    assertThat(defaults.backoffMillis(20, new TimeoutException("no answer"))).isEqualTo(1000);
    assertThat(defaults.backoffMillis(20, storeFault)).isEqualTo(30_000);
  }

  private static void awaitState(Supervisor.Running running, Supervisor.State state) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (running.status().state() != state) {
      assertThat(System.nanoTime()).as("%s reaches %s", running.status(), state).isLessThan(deadline);
      Thread.sleep(5);
    }
  }
}
