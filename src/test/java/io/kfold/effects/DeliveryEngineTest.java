package io.kfold.effects;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.NullNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.effects.EffectConfig.Delivery;
import io.kfold.entity.EffectSink.PermanentFailure;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.function.Function;

import static org.assertj.core.api.Assertions.assertThat;

/** The engine against a sink answering as each test says, with time moved by hand. */
class DeliveryEngineTest {

  /** Time moved by hand: due actions run in the order they are due. */
  private static final class ManualTimer implements Timer {
    private record Scheduled(long at, long order, Runnable action) {}

    private final PriorityQueue<Scheduled> queue = new PriorityQueue<>((a, b) -> a.at() != b.at()
        ? Long.compare(a.at(), b.at()) : Long.compare(a.order(), b.order()));
    private long now;
    private long scheduled;

    @Override
    public Runnable schedule(long delayMs, Runnable action) {
      Scheduled entry = new Scheduled(now + delayMs, scheduled++, action);
      queue.add(entry);
      return () -> queue.remove(entry);
    }

    void advance(long ms) {
      long until = now + ms;
      while (!queue.isEmpty() && queue.peek().at() <= until) {
        Scheduled next = queue.poll();
        now = next.at();
        next.action().run();
      }
      now = until;
    }
  }

  /** A sink whose answers the test decides; it counts the calls. */
  private static final class ScriptedSink implements EffectSink {
    final List<String> calls = new ArrayList<>();
    Function<Change, Future<Void>> answer = change -> Future.succeededFuture();

    @Override
    public Future<Void> deliver(Change change) {
      calls.add(change.id());
      return answer.apply(change);
    }
  }

  private final ManualTimer timer = new ManualTimer();
  private final ScriptedSink sink = new ScriptedSink();
  private final EffectStats stats = new EffectStats();

  /** Retries after 100, 200, 400... ms (no jitter: the random source answers the middle). */
  private DeliveryEngine engine(Delivery delivery, int attempts, int breakerFailures) {
    EffectConfig effect = new EffectConfig("hook", EffectConfig.Kind.HTTP, delivery, List.of("users"), Set.of(), 4,
        new EffectConfig.Retry(attempts, 100, 1000, 0.2), new EffectConfig.Breaker(breakerFailures, 1000), 500,
        new EffectConfig.HttpTarget("POST", "http://127.0.0.1:1/hook", NullNode.instance));
    return new DeliveryEngine(effect, sink, timer, () -> 0.5, stats);
  }

  private static Change change(String key, long version) {
    ObjectNode json = JsonNodeFactory.instance.objectNode().put("id", key + ":" + version);
    json.putObject("event").put("id", key + "-" + version).put("entity", "users").put("key", key)
        .put("version", version).put("type", "Changed").putObject("payload");
    json.putObject("state");
    return Change.of(json);
  }

  private static Future<Void> failing() {
    return Future.failedFuture(new IllegalStateException("answered 503"));
  }

  @Test
  @DisplayName("a failed attempt is retried after an exponential backoff until it succeeds")
  void retriesWithBackoff() {
    DeliveryEngine engine = engine(Delivery.AT_LEAST_ONCE, 5, 100);
    sink.answer = change -> sink.calls.size() < 3 ? failing() : Future.succeededFuture();
    Future<DeliveryEngine.Outcome> outcome = engine.deliver(change("k", 1));
    assertThat(sink.calls).hasSize(1);
    timer.advance(99);
    assertThat(sink.calls).as("the first retry waits 100 ms").hasSize(1);
    timer.advance(1);
    assertThat(sink.calls).hasSize(2);
    timer.advance(199);
    assertThat(sink.calls).as("the second waits 200 ms").hasSize(2);
    timer.advance(1);
    assertThat(outcome.result().delivered()).isTrue();
    assertThat(stats.retried.sum()).isEqualTo(2);
    assertThat(stats.delivered.sum()).isEqualTo(1);
  }

  @Test
  @DisplayName("after the configured attempts the engine gives up with the last error, to be dead-lettered")
  void givesUp() {
    DeliveryEngine engine = engine(Delivery.AT_LEAST_ONCE, 3, 100);
    sink.answer = change -> failing();
    Future<DeliveryEngine.Outcome> outcome = engine.deliver(change("k", 1));
    timer.advance(10_000);
    assertThat(sink.calls).hasSize(3);
    assertThat(outcome.result().delivered()).isFalse();
    assertThat(outcome.result().attempts()).isEqualTo(3);
    assertThat(outcome.result().error()).contains("answered 503");
  }

  @Test
  @DisplayName("a permanent failure is not retried, and at-most-once tries once")
  void notRetried() {
    sink.answer = change -> Future.failedFuture(new PermanentFailure("answered 422"));
    Future<DeliveryEngine.Outcome> permanent = engine(Delivery.AT_LEAST_ONCE, 5, 100).deliver(change("k", 1));
    assertThat(permanent.result().error()).isEqualTo("answered 422");
    sink.answer = change -> failing();
    Future<DeliveryEngine.Outcome> once = engine(Delivery.AT_MOST_ONCE, 5, 100).deliver(change("k", 2));
    timer.advance(10_000);
    assertThat(sink.calls).hasSize(2);
    assertThat(once.result().error()).startsWith("at-most-once, not retried");
  }

  @Test
  @DisplayName("a target that does not answer within timeoutMs counts as a failure and is retried")
  void timeout() {
    DeliveryEngine engine = engine(Delivery.AT_LEAST_ONCE, 5, 100);
    sink.answer = change -> sink.calls.size() == 1 ? Promise.<Void>promise().future() : Future.succeededFuture();
    Future<DeliveryEngine.Outcome> outcome = engine.deliver(change("k", 1));
    timer.advance(499);
    assertThat(outcome.isComplete()).isFalse();
    timer.advance(1 + 100);
    assertThat(outcome.result().delivered()).isTrue();
    assertThat(sink.calls).hasSize(2);
  }

  @Test
  @DisplayName("the breaker opens after failures in a row, holds deliveries without burning attempts, probes after openMs and lets all through once the probe succeeds")
  void breaker() {
    DeliveryEngine engine = engine(Delivery.AT_LEAST_ONCE, 2, 2);
    sink.answer = change -> failing();
    Future<DeliveryEngine.Outcome> a = engine.deliver(change("a", 1));
    Future<DeliveryEngine.Outcome> b = engine.deliver(change("b", 1));
    assertThat(engine.breaker()).isEqualTo(Breaker.State.OPEN);
    assertThat(stats.toJson().path("breaker").asText()).isEqualTo("open");
    timer.advance(999);
    assertThat(sink.calls).as("held while open").hasSize(2);
    timer.advance(1);
    assertThat(sink.calls).as("one probe").hasSize(3);
    assertThat(engine.breaker()).as("the probe failed").isEqualTo(Breaker.State.OPEN);
    sink.answer = change -> Future.succeededFuture();
    timer.advance(1000);
    assertThat(engine.breaker()).isEqualTo(Breaker.State.CLOSED);
    assertThat(a.result().delivered()).as("a failed 3 times with 2 attempts: failures while open cost none").isTrue();
    assertThat(b.result().delivered()).isTrue();
    assertThat(sink.calls).hasSize(5);
  }
}
