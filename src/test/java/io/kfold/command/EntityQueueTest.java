package io.kfold.command;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.junit5.Timeout;
import io.vertx.junit5.VertxExtension;
import io.vertx.junit5.VertxTestContext;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A write that throws instead of answering a failed future (a bug in user code, an unexpected
 * state) must fail on its own and leave the entity's later writes free to run.
 */
@ExtendWith(VertxExtension.class)
class EntityQueueTest {

  private static final String ENTITY = "orders/o-1";

  private static Future<String> throwing() {
    throw new IllegalStateException("decide broke");
  }

  @Test
  @Timeout(value = 10, timeUnit = TimeUnit.SECONDS)
  @DisplayName("an entity's first write that throws answers a failed future, and the next write of the entity runs")
  void firstWriteThrows(Vertx vertx, VertxTestContext test) {
    EntityQueue queue = new EntityQueue();
    vertx.runOnContext(v -> test.verify(() -> {
      Future<String> broken = queue.run(ENTITY, EntityQueueTest::throwing);
      Future<String> next = queue.run(ENTITY, () -> Future.succeededFuture("written"));
      broken.onComplete(test.failing(e -> test.verify(() -> assertThat(e).hasMessage("decide broke"))));
      next.onComplete(test.succeeding(written -> test.verify(() -> {
        assertThat(written).isEqualTo("written");
        test.completeNow();
      })));
    }));
  }

  @Test
  @Timeout(value = 10, timeUnit = TimeUnit.SECONDS)
  @DisplayName("a queued write that throws on an event loop answers a failed future, and the write after it runs")
  void queuedWriteThrowsOnEventLoop(Vertx vertx, VertxTestContext test) {
    EntityQueue queue = new EntityQueue();
    Promise<String> first = Promise.promise();
    vertx.runOnContext(v -> test.verify(() -> {
      queue.run(ENTITY, first::future);
      Future<String> broken = queue.run(ENTITY, EntityQueueTest::throwing);
      Future<String> next = queue.run(ENTITY, () -> Future.succeededFuture("written"));
      first.complete("first");
      broken.onComplete(test.failing(e -> test.verify(() -> assertThat(e).hasMessage("decide broke"))));
      next.onComplete(test.succeeding(written -> test.verify(() -> {
        assertThat(written).isEqualTo("written");
        test.completeNow();
      })));
    }));
  }

  @Test
  @Timeout(value = 10, timeUnit = TimeUnit.SECONDS)
  @DisplayName("a queued write that throws off any Vert.x context answers a failed future, and the write after it runs")
  void queuedWriteThrowsOffContext(VertxTestContext test) {
    EntityQueue queue = new EntityQueue();
    Promise<String> first = Promise.promise();
    queue.run(ENTITY, first::future);
    Future<String> broken = queue.run(ENTITY, EntityQueueTest::throwing);
    Future<String> next = queue.run(ENTITY, () -> Future.succeededFuture("written"));
    first.complete("first");
    broken.onComplete(test.failing(e -> test.verify(() -> assertThat(e).hasMessage("decide broke"))));
    next.onComplete(test.succeeding(written -> test.verify(() -> {
      assertThat(written).isEqualTo("written");
      test.completeNow();
    })));
  }
}
