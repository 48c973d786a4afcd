package io.kfold.fold;

import io.kfold.fold.PublishedMarks.Mark;
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
  @DisplayName("changes and dead letters are each judged by their own topic's mark: a dead letter before the last change"
      + " published is still published")
  void eachTopicItsOwnMark() {
    marks.put(events, new Mark("app.users.changes", 7, "app.users.dlq", 3));
    List<ProducerRecord<String, byte[]>> batch = List.of(change(5), deadLetter(3), deadLetter(6), change(7),
        record("app.view.contributions", 4), change(8), deadLetter(9));
    assertThat(marks.notYetPublished(events, batch, 10)).extracting(this::describe)
        .containsExactly("app.users.dlq@6", "app.view.contributions@4", "app.users.changes@8", "app.users.dlq@9");
    assertThat(marks.published(events, "app.users.dlq", 3)).as("marks dropped once the fold is past them").isFalse();
  }

  @Test
  @DisplayName("the marks stay while the fold is below either of them, and every outbox record is judged the same way")
  void marksStayBelow() {
    marks.put(events, new Mark("app.users.changes", 4, "app.users.dlq", 12));
    assertThat(marks.notYetPublished(events, List.of(change(5), deadLetter(6)), 7)).extracting(this::describe)
        .containsExactly("app.users.changes@5");
    assertThat(marks.published(events, "app.users.dlq", 12)).isTrue();
    assertThat(marks.published(events, "app.users.dlq", 13)).isFalse();
    assertThat(marks.published(events, "app.users.changes", 4)).isTrue();
    marks.forget(List.of(events));
    assertThat(marks.published(events, "app.users.changes", 4)).isFalse();
  }

  @Test
  @DisplayName("a partition whose topics hold nothing of it publishes everything")
  void noMark() {
    marks.put(events, new Mark("app.users.changes", -1, "app.users.dlq", -1));
    List<ProducerRecord<String, byte[]>> batch = List.of(change(0), deadLetter(1));
    assertThat(marks.notYetPublished(events, batch, 2)).isSameAs(batch);
  }

  private ProducerRecord<String, byte[]> change(long sourceOffset) {
    return record("app.users.changes", sourceOffset);
  }

  private ProducerRecord<String, byte[]> deadLetter(long sourceOffset) {
    return record("app.users.dlq", sourceOffset);
  }

  private ProducerRecord<String, byte[]> record(String topic, long sourceOffset) {
    RecordHeaders headers = new RecordHeaders();
    headers.add(Fold.SOURCE_OFFSET, Long.toString(sourceOffset).getBytes(StandardCharsets.UTF_8));
    return new ProducerRecord<>(topic, null, null, "k", new byte[0], headers);
  }

  private String describe(ProducerRecord<String, byte[]> record) {
    return record.topic() + "@" + PublishedMarks.sourceOffset(record);
  }
}
