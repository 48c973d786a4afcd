package io.kfold.fold;

import io.kfold.TestClock;

import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

class LagToolCommitsTest {

  private final TestClock clock = new TestClock();
  private final LagToolCommits commits = new LagToolCommits(clock, Duration.ofSeconds(1));
  private final TopicPartition p0 = new TopicPartition("events", 0);
  private final TopicPartition p1 = new TopicPartition("events", 1);

  @Test
  @DisplayName("the first folded offsets are due at once, later ones once a second, the latest of each partition")
  void onceASecond() {
    assertThat(commits.due()).as("nothing folded yet").isEmpty();
    commits.folded(Map.of(p0, 10L));
    assertThat(commits.due()).isEqualTo(Map.of(p0, new OffsetAndMetadata(10)));
    commits.folded(Map.of(p0, 20L, p1, 5L));
    commits.folded(Map.of(p0, 30L));
    clock.advance(Duration.ofMillis(999));
    assertThat(commits.due()).as("within the second").isEmpty();
    clock.advance(Duration.ofMillis(1));
    assertThat(commits.due()).isEqualTo(Map.of(p0, new OffsetAndMetadata(30), p1, new OffsetAndMetadata(5)));
    clock.advance(Duration.ofSeconds(5));
    assertThat(commits.due()).as("all committed already").isEmpty();
  }

  @Test
  @DisplayName("a partition taken away is not committed by this node; on stop, everything left is committed whatever the time")
  void forgetAndTakeAll() {
    commits.folded(Map.of(p0, 10L));
    commits.due();
    commits.folded(Map.of(p0, 11L, p1, 7L));
    commits.forget(List.of(p0));
    assertThat(commits.takeAll()).isEqualTo(Map.of(p1, new OffsetAndMetadata(7)));
    assertThat(commits.takeAll()).isEmpty();
  }
}
