package io.kfold.fold;

import io.kfold.TestClock;

import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;

class RestoresTest {

  private final FoldProgress progress = new FoldProgress();
  private final TestClock clock = new TestClock();
  private final Restores restores = new Restores(progress, clock);
  private final TopicPartition events0 = new TopicPartition("events", 0);
  private final TopicPartition events1 = new TopicPartition("events", 1);
  private final TopicPartition changelog0 = new TopicPartition("changelog", 0);
  private final TopicPartition changelog1 = new TopicPartition("changelog", 1);

  @Test
  @DisplayName("a restore shows in /ready from its start, with how far it has read, until it reaches the changelog's end")
  void progressUntilComplete() {
    restores.start(events0, changelog0, 100, 400);
    assertThat(progress.restoring().get(events0)).containsExactly(0, 300);
    assertThat(restores.changelogs()).containsExactly(changelog0);
    clock.advance(Duration.ofSeconds(6));
    restores.read(changelog0, 250, 150);
    assertThat(progress.restoring().get(events0)).containsExactly(150, 300);
    assertThat(restores.completed()).isEmpty();
    restores.read(changelog0, 400, 150);
    assertThat(restores.completed()).containsExactly(events0);
    assertThat(progress.restoring()).isEmpty();
    assertThat(restores.isEmpty()).isTrue();
  }

  @Test
  @DisplayName("a warm copy already at the changelog's end, or an empty changelog, completes without reading")
  void nothingToRead() {
    restores.start(events0, changelog0, 50, 50);
    restores.start(events1, changelog1, 0, 0);
    assertThat(restores.completed()).containsExactlyInAnyOrder(events0, events1);
    assertThat(progress.restoring()).isEmpty();
  }

  @Test
  @DisplayName("a partition taken away stops restoring, says where, and leaves /ready; the others go on")
  void cancel() {
    restores.start(events0, changelog0, 0, 100);
    restores.start(events1, changelog1, 0, 100);
    restores.read(changelog0, 40, 40);
    assertThat(restores.cancel(List.of(events0))).as("where it stopped").isEqualTo(Map.of(changelog0, 40L));
    assertThat(restores.changelogs()).isEqualTo(Set.of(changelog1));
    assertThat(progress.restoring()).containsOnlyKeys(events1);
  }
}
