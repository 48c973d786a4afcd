package io.kfold.fold;

import io.kfold.fold.PublishQueue.Batch;
import io.kfold.fold.PublishQueue.ClearOutbox;
import io.kfold.fold.PublishQueue.PublishAgain;
import io.kfold.fold.PublishQueue.SendChangelog;
import io.kfold.store.ChangelogItem;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.errors.TimeoutException;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.stream.IntStream;

import static org.assertj.core.api.Assertions.assertThat;

class PublishQueueTest {

  private final PublishQueue queue = new PublishQueue();
  private final TopicPartition p0 = new TopicPartition("events", 0);
  private final TopicPartition p1 = new TopicPartition("events", 1);

  @Test
  @DisplayName("a batch's changelog goes once its changes are acknowledged, and its outbox is cleared once the changelog is")
  void changesThenChangelogThenClear() {
    List<ChangelogItem> changelog = items(2);
    Batch batch = queue.add(p0, 10, changelog, 2);
    assertThat(queue.advance()).as("changes on their way").isEmpty();
    batch.acknowledged(null);
    assertThat(queue.advance()).as("one change on its way").isEmpty();
    batch.acknowledged(null);
    assertThat(queue.advance()).containsExactly(new SendChangelog(p0, batch, changelog));
    assertThat(queue.advance()).as("changelog on its way").isEmpty();
    assertThat(queue.pending(List.of(p0))).isTrue();
    batch.acknowledged(null);
    batch.acknowledged(null);
    assertThat(queue.advance()).containsExactly(new ClearOutbox(p0, 10));
    assertThat(queue.pending(List.of(p0))).isFalse();
  }

  @Test
  @DisplayName("a later batch's changelog waits for an earlier batch's changes; the outbox is cleared in order, up to the"
      + " last batch published whole")
  void inPartitionOrder() {
    Batch first = queue.add(p0, 10, items(1), 1);
    Batch second = queue.add(p0, 20, items(1), 1);
    Batch empty = queue.add(p0, 30, items(1), 0);
    second.acknowledged(null);
    assertThat(queue.advance()).as("the first batch's changes are on their way").isEmpty();
    first.acknowledged(null);
    assertThat(queue.advance()).extracting(step -> ((SendChangelog) step).batch()).containsExactly(first, second, empty);
    second.acknowledged(null);
    empty.acknowledged(null);
    assertThat(queue.advance()).as("the first batch's changelog is on its way").isEmpty();
    first.acknowledged(null);
    assertThat(queue.advance()).containsExactly(new ClearOutbox(p0, 30));
  }

  @Test
  @DisplayName("a retriable failure publishes the partition's outbox again; one that failed for good is passed; other"
      + " partitions go on")
  void failures() {
    Batch retriable = queue.add(p0, 10, items(1), 1);
    List<ChangelogItem> changelog = items(1);
    Batch tooLarge = queue.add(p1, 10, changelog, 1);
    retriable.acknowledged(new TimeoutException("broker away"));
    tooLarge.acknowledged(new RecordTooLargeException("too large"));
    assertThat(queue.advance()).containsExactlyInAnyOrder(new PublishAgain(p0), new SendChangelog(p1, tooLarge, changelog));
    assertThat(queue.pending(List.of(p0))).as("the old batches are dropped; the outbox is sent again").isFalse();
  }

  @Test
  @DisplayName("a partition forgotten sends nothing more, and acknowledgements that still come count for nothing")
  void forget() {
    Batch batch = queue.add(p0, 10, items(1), 1);
    queue.forget(List.of(p0));
    batch.acknowledged(null);
    assertThat(queue.advance()).isEmpty();
    assertThat(queue.pending(List.of(p0, p1))).isFalse();
  }

  private static List<ChangelogItem> items(int count) {
    return IntStream.range(0, count).mapToObj(i -> ChangelogItem.nextOffset("events", 0, i)).toList();
  }
}
