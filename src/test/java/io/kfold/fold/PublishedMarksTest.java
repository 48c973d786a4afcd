package io.kfold.fold;

import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

class PublishedMarksTest {

  private final PublishedMarks marks = new PublishedMarks();
  private final TopicPartition events = new TopicPartition("app.users.events", 2);

  @Test
  @DisplayName("what the fold publishes again up to the last change published is dropped, and the mark with it once past")
  void dropsWhatIsPublished() {
    marks.put(events, 7);
    assertThat(marks.notYetPublished(events, List.of(change(5), change(7)), 8)).isEmpty();
    assertThat(marks.published(events, 7)).as("mark dropped once the fold is past it").isFalse();
    assertThat(marks.notYetPublished(events, List.of(change(8)), 9)).extracting(PublishedMarks::sourceOffset)
        .containsExactly(8L);
  }

  @Test
  @DisplayName("the mark stays while the fold is below it; a partition whose changes topic holds nothing publishes everything")
  void marksStayBelow() {
    marks.put(events, 12);
    assertThat(marks.notYetPublished(events, List.of(change(5)), 6)).isEmpty();
    assertThat(marks.published(events, 12)).isTrue();
    assertThat(marks.published(events, 13)).isFalse();
    marks.forget(List.of(events));
    assertThat(marks.published(events, 12)).isFalse();
    marks.put(events, -1);
    List<ProducerRecord<String, byte[]>> batch = List.of(change(0));
    assertThat(marks.notYetPublished(events, batch, 1)).isSameAs(batch);
  }

  private ProducerRecord<String, byte[]> change(long sourceOffset) {
    RecordHeaders headers = new RecordHeaders();
    headers.add(Fold.SOURCE_OFFSET, Long.toString(sourceOffset).getBytes(StandardCharsets.UTF_8));
    return new ProducerRecord<>("app.users.changes", null, null, "k", new byte[0], headers);
  }
}
