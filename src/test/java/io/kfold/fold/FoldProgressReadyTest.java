package io.kfold.fold;

import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;

/** What /ready reads: {@link FoldProgress#foldsAllAssigned} lasts under writes, {@link FoldProgress#caughtUp} does not. */
class FoldProgressReadyTest {

  private static final TopicPartition P0 = new TopicPartition("t.users.events", 0);
  private static final TopicPartition P1 = new TopicPartition("t.users.events", 1);

  @Test
  @DisplayName("ready once every assigned partition was read to its end; steady writes (lag above 0 again) keep it"
      + " ready; a partition taken away and given back must be read to its end again")
  void readinessLastsUnderWrites() {
    FoldProgress progress = new FoldProgress();
    progress.lag(Map.of(P0, 40L, P1, -1L), Set.of());
    progress.assigned(1);
    assertThat(progress.foldsAllAssigned()).as("nothing read to its end yet").isFalse();

    progress.lag(Map.of(P0, 0L, P1, 7L), Set.of());
    assertThat(progress.foldsAllAssigned()).as("P1 not yet at its end").isFalse();
    progress.lag(Map.of(P0, 3L, P1, 0L), Set.of());
    assertThat(progress.foldsAllAssigned()).as("each has been at its end once").isTrue();

    for (long lag = 1; lag <= 50; lag++) {  // writes keep coming: the lag after each poll is rarely 0
      progress.lag(Map.of(P0, lag, P1, lag % 7), Set.of());
      assertThat(progress.foldsAllAssigned()).as("lag %d", lag).isTrue();
    }
    assertThat(progress.caughtUp()).as("caughtUp says whether all is folded right now").isFalse();
    progress.lag(Map.of(P0, -1L, P1, 2L), Set.of());
    assertThat(progress.foldsAllAssigned()).as("a lag not known for a moment").isTrue();

    progress.revoked(List.of(P1));
    assertThat(progress.foldsAllAssigned()).as("until the next assignment is taken up").isFalse();
    progress.lag(Map.of(P0, 5L, P1, 9L), Set.of());
    progress.assigned(2);
    assertThat(progress.foldsAllAssigned()).as("P1 came back: it must be read to its end again").isFalse();
    progress.lag(Map.of(P0, 5L, P1, 0L), Set.of());
    assertThat(progress.foldsAllAssigned()).isTrue();

    progress.lag(Map.of(P0, 5L), Set.of(P1));
    assertThat(progress.foldsAllAssigned()).as("a partition being taken up").isFalse();
  }
}
