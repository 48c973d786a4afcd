package io.kfold.log;

import org.apache.kafka.clients.consumer.CloseOptions;
import org.apache.kafka.clients.consumer.KafkaConsumer;

import java.time.Duration;

/**
 * A {@link ConsumerLoop} around one Kafka consumer that {@link #open} creates on the loop's thread:
 * the consumer's one field, its wakeup from other threads, and its close.
 */
public abstract class KafkaConsumerLoop<K, V> implements ConsumerLoop {

  /** Set by {@link #open} on the loop's thread; volatile because {@link #wakeup} reads it from others. */
  protected volatile KafkaConsumer<K, V> consumer;

  @Override
  public final void wakeup() {
    KafkaConsumer<K, V> current = consumer;
    if (current != null) {
      current.wakeup();
    }
  }

  /** Closes the consumer, if {@link #open} got as far as creating it. */
  protected final void closeConsumer(Duration timeout) {
    closeConsumer(timeout, false);
  }

  /**
   * Closes the consumer; {@code leaveGroup}: it leaves its group at once, also as a static member
   * (which by default stays in the group until its session times out, so that a restart takes its
   * partitions back without a rebalance). A node that stops leaves, so that its partitions move now;
   * a loop that restarts after a failure stays, and gets its partitions back as they were.
   */
  protected final void closeConsumer(Duration timeout, boolean leaveGroup) {
    KafkaConsumer<K, V> current = consumer;
    consumer = null;
    if (current != null) {
      current.close(CloseOptions.groupMembershipOperation(leaveGroup ? CloseOptions.GroupMembershipOperation.LEAVE_GROUP
          : CloseOptions.GroupMembershipOperation.DEFAULT).withTimeout(timeout));
    }
  }
}
