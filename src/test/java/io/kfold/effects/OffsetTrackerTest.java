package io.kfold.effects;

import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.OptionalLong;

import static org.assertj.core.api.Assertions.assertThat;

class OffsetTrackerTest {

  private static final TopicPartition PARTITION = new TopicPartition("app.users.changes", 0);

  @Test
  @DisplayName("at-least-once: the committable offset is the lowest unfinished one, or the one after the last received")
  void lowestUnfinished() {
    OffsetTracker tracker = new OffsetTracker();
    Lease lease = new Lease(PARTITION, 1);
    tracker.received(lease, 10);
    tracker.received(lease, 11);
    tracker.received(lease, 12);
    assertThat(tracker.finished(lease, 11)).hasValue(10);
    assertThat(tracker.finished(lease, 10)).hasValue(12);
    assertThat(tracker.finished(lease, 12)).hasValue(13);
  }

  @Test
  @DisplayName("a change finishing under a lease that ended commits nothing, and does not touch the partition's next lease")
  void leasesAreApart() {
    OffsetTracker tracker = new OffsetTracker();
    Lease first = new Lease(PARTITION, 1);
    Lease second = new Lease(PARTITION, 2);
    tracker.received(first, 5);
    tracker.forget(first);
    tracker.received(second, 5);
    tracker.received(second, 6);
    assertThat(tracker.finished(first, 5)).isEqualTo(OptionalLong.empty());
    assertThat(tracker.finished(second, 6)).as("offset 5 still runs under the second lease").hasValue(5);
  }

  @Test
  @DisplayName("at-most-once: the offset committed before a start is never lower than one committed before")
  void neverLower() {
    OffsetTracker tracker = new OffsetTracker();
    Lease lease = new Lease(PARTITION, 1);
    assertThat(tracker.starting(lease, 7)).isEqualTo(8);
    assertThat(tracker.starting(lease, 3)).as("a lower offset of another entity starting later").isEqualTo(8);
    assertThat(tracker.starting(lease, 9)).isEqualTo(10);
    tracker.forget(lease);
    assertThat(tracker.starting(new Lease(PARTITION, 2), 4)).isEqualTo(5);
  }

  @Test
  @DisplayName("at-most-once: what a crash would leave undone below the committed offset, passed over or running, goes in the commit's metadata")
  void unfinished() {
    OffsetTracker tracker = new OffsetTracker();
    Lease lease = new Lease(PARTITION, 1);
    for (long offset = 10; offset <= 14; offset++) {
      tracker.waiting(lease, offset);
    }
    tracker.starting(lease, 10);
    tracker.starting(lease, 13);  // 11 and 12 wait behind other changes of their entities: passed over
    assertThat(tracker.unfinished(lease)).isEqualTo(new OffsetTracker.Unfinished(2, 2));
    tracker.ended(lease);
    assertThat(tracker.unfinished(lease)).as("14 waits above the committed offset: read again after a crash")
        .isEqualTo(new OffsetTracker.Unfinished(2, 1));
    assertThat(OffsetTracker.Unfinished.parse(tracker.unfinished(lease).metadata()))
        .isEqualTo(new OffsetTracker.Unfinished(2, 1));
    assertThat(OffsetTracker.Unfinished.parse("")).isEqualTo(OffsetTracker.Unfinished.NONE);
    assertThat(OffsetTracker.Unfinished.parse(null)).isEqualTo(OffsetTracker.Unfinished.NONE);
  }
}
