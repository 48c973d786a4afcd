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
 * What the changes topic holds already of what the fold publishes for a partition, found when the
 * partition is assigned: a node that folds the partition again from an older offset (a new owner,
 * a wiped store) or publishes its outbox again (after a crash) must not publish that twice. The
 * changes of one events partition go to the same changes partition, in order: those up to the last
 * one found there (by this node before a crash, or by the partition's previous owner) were all
 * published.
 */
final class PublishedMarks {

  /** Per events partition, the source offset of the last change found in its changes partition. */
  private final Map<TopicPartition, Long> lastChange = new HashMap<>();

  void put(TopicPartition source, long lastChangeSourceOffset) {
    if (lastChangeSourceOffset >= 0) {
      lastChange.put(source, lastChangeSourceOffset);
    }
  }

  /** Whether the change for the source offset of this partition is in the changes topic already. */
  boolean published(TopicPartition source, long sourceOffset) {
    Long mark = lastChange.get(source);
    return mark != null && sourceOffset <= mark;
  }

  /**
   * The records of a folded batch that are not yet published. Once the fold is past the mark (the
   * batch ends at {@code nextOffset}), nothing more can be, and the mark is dropped.
   */
  List<ProducerRecord<String, byte[]>> notYetPublished(TopicPartition source, List<ProducerRecord<String, byte[]>> records,
                                                       long nextOffset) {
    Long mark = lastChange.get(source);
    if (mark == null) {
      return records;
    }
    if (nextOffset > mark) {
      lastChange.remove(source);
    }
    return records.stream().filter(r -> sourceOffset(r) > mark).toList();
  }

  void forget(Collection<TopicPartition> sources) {
    sources.forEach(lastChange::remove);
  }

  /** The offset of the event a change or dead letter comes from. */
  static long sourceOffset(ProducerRecord<String, byte[]> record) {
    Header header = record.headers().lastHeader(Fold.SOURCE_OFFSET);
    return header == null ? Long.MAX_VALUE : Long.parseLong(new String(header.value(), StandardCharsets.UTF_8));
  }
}
