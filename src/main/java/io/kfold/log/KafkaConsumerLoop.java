package io.kfold.log;

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
    KafkaConsumer<K, V> current = consumer;
    consumer = null;
    if (current != null) {
      current.close(timeout);
    }
  }
}
