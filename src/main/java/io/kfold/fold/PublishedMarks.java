package io.kfold.fold;

import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;

import java.nio.charset.StandardCharsets;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * What the topics hold already of what the fold publishes for a partition, found when the
 * partition is assigned: a node that folds the partition again from an older offset (a new owner,
 * a wiped store) or publishes its outbox again (after a crash) must not publish that twice.
 *
 * <p>The changes of one events partition go to the same changes partition, in order, and its dead
 * letters to the one partition of the dead-letter topic, in order: those up to the last one found
 * there (by this node before a crash, or by the partition's previous owner) were all published.
 * Each kind has its own mark, as a dead letter and a change of the same poll may reach their topics
 * in either order. Records for other topics are always published.
 */
final class PublishedMarks {

  /**
   * The source offsets of the last change and of the last dead letter from one events partition
   * found in their topics; -1 where there is none.
   */
  record Mark(String changesTopic, long lastChange, String deadLetterTopic, long lastDeadLetter) {
    boolean covers(String topic, long sourceOffset) {
      return topic.equals(changesTopic) ? sourceOffset <= lastChange
          : topic.equals(deadLetterTopic) && sourceOffset <= lastDeadLetter;
    }
  }

  private final Map<TopicPartition, Mark> bySource = new HashMap<>();

  void put(TopicPartition source, Mark mark) {
    if (mark.lastChange() >= 0 || mark.lastDeadLetter() >= 0) {
      bySource.put(source, mark);
    } else {
      bySource.remove(source);
    }
  }

  /** Whether the record for the source offset of this partition is in {@code topic} already. */
  boolean published(TopicPartition source, String topic, long sourceOffset) {
    Mark mark = bySource.get(source);
    return mark != null && mark.covers(topic, sourceOffset);
  }

  /**
   * The records of a folded batch that are not yet published. Once the fold is past both marks
   * (the batch ends at {@code nextOffset}), nothing more can be, and the marks are dropped.
   */
  List<ProducerRecord<String, byte[]>> notYetPublished(TopicPartition source, List<ProducerRecord<String, byte[]>> records,
                                                       long nextOffset) {
    Mark mark = bySource.get(source);
    if (mark == null) {
      return records;
    }
    if (nextOffset > Math.max(mark.lastChange(), mark.lastDeadLetter())) {
      bySource.remove(source);
    }
    return records.stream().filter(r -> !mark.covers(r.topic(), sourceOffset(r))).toList();
  }

  void forget(Collection<TopicPartition> sources) {
    sources.forEach(bySource::remove);
  }

  /** The offset of the event a change or dead letter comes from. */
  static long sourceOffset(ProducerRecord<String, byte[]> record) {
    Header header = record.headers().lastHeader(Fold.SOURCE_OFFSET);
    return header == null ? Long.MAX_VALUE : Long.parseLong(new String(header.value(), StandardCharsets.UTF_8));
  }
}
