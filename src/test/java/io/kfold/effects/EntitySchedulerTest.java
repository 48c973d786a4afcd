package io.kfold.effects;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

class EntitySchedulerTest {

  private static final EntityRef ORDER = new EntityRef("orders", "o-1");
  private static final EntityRef SHIPMENT = new EntityRef("shipments", "o-1");
  private static final EntityRef OTHER_ORDER = new EntityRef("orders", "o-2");

  @Test
  @DisplayName("one job at a time per entity, in the order added; entities of two types with one id are two entities")
  void orderPerEntity() {
    EntityScheduler<String> scheduler = new EntityScheduler<>(8, 100);
    scheduler.add(ORDER, "order v1");
    scheduler.add(ORDER, "order v2");
    scheduler.add(SHIPMENT, "shipment v1");
    assertThat(scheduler.startable()).containsExactly("order v1", "shipment v1");
    assertThat(scheduler.startable()).as("order v2 waits for order v1").isEmpty();
    scheduler.finished(ORDER);
    assertThat(scheduler.startable()).containsExactly("order v2");
    assertThat(scheduler.inFlight()).isEqualTo(2);
  }

  @Test
  @DisplayName("at most maxInFlight entities run at once; the next one starts when one finishes")
  void boundedParallelism() {
    EntityScheduler<String> scheduler = new EntityScheduler<>(2, 100);
    scheduler.add(ORDER, "a");
    scheduler.add(SHIPMENT, "b");
    scheduler.add(OTHER_ORDER, "c");
    assertThat(scheduler.startable()).containsExactly("a", "b");
    scheduler.finished(SHIPMENT);
    assertThat(scheduler.startable()).containsExactly("c");
  }

  @Test
  @DisplayName("dropping a partition's jobs keeps the running one until it finishes, and frees the rest")
  void dropKeepsRunning() {
    EntityScheduler<String> scheduler = new EntityScheduler<>(8, 100);
    scheduler.add(ORDER, "gone v1");
    scheduler.add(ORDER, "gone v2");
    scheduler.add(OTHER_ORDER, "gone too");
    assertThat(scheduler.startable()).containsExactly("gone v1", "gone too");
    scheduler.add(SHIPMENT, "stays");
    scheduler.drop(job -> job.startsWith("gone"));
    assertThat(scheduler.startable()).containsExactly("stays");
    scheduler.finished(ORDER);
    scheduler.add(ORDER, "order v3");
    assertThat(scheduler.startable()).containsExactly("order v3");
  }

  @Test
  @DisplayName("more jobs than the buffer bound ask for a pause, until they are done")
  void overloaded() {
    EntityScheduler<String> scheduler = new EntityScheduler<>(1, 2);
    scheduler.add(ORDER, "1");
    scheduler.add(ORDER, "2");
    assertThat(scheduler.overloaded()).isFalse();
    scheduler.add(ORDER, "3");
    assertThat(scheduler.overloaded()).isTrue();
    scheduler.startable();
    scheduler.finished(ORDER);
    assertThat(scheduler.overloaded()).isFalse();
  }
}
