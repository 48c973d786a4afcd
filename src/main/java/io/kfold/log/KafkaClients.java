package io.kfold.log;

import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;

import java.util.HashMap;
import java.util.Map;

/** The settings kfold's Kafka clients share; every guarantee of the design depends on a few of them. */
public final class KafkaClients {

  private KafkaClients() {}

  public static Map<String, Object> admin(String bootstrap, String clientId) {
    return Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap, AdminClientConfig.CLIENT_ID_CONFIG, clientId);
  }

  /** Idempotent and acknowledged by all in-sync replicas: an appended event is neither lost nor doubled. */
  public static Map<String, Object> producer(String bootstrap, String clientId) {
    Map<String, Object> conf = new HashMap<>();
    conf.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    conf.put(ProducerConfig.CLIENT_ID_CONFIG, clientId);
    conf.put(ProducerConfig.ACKS_CONFIG, "all");
    conf.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
    conf.put(ProducerConfig.LINGER_MS_CONFIG, 1);
    conf.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
    conf.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
    return conf;
  }

  /**
   * The fold's publisher of change records: as safe as {@link #producer}, and tuned for volume (one
   * change per event, about a kilobyte each): bigger batches, compressed.
   */
  public static Map<String, Object> changePublisher(String bootstrap, String clientId) {
    Map<String, Object> conf = producer(bootstrap, clientId);
    conf.put(ProducerConfig.LINGER_MS_CONFIG, 5);
    conf.put(ProducerConfig.BATCH_SIZE_CONFIG, 256 * 1024);
    conf.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "lz4");
    // Retry until the broker is back: a change dropped for a timeout would be a gap for consumers.
    conf.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, Integer.MAX_VALUE);
    return conf;
  }

  /**
   * The fold's publisher when it fences zombies: {@link #changePublisher}'s batching, transactional
   * (a transaction per poll; see {@code FoldTransactions}). A transaction left open by a node that
   * died blocks what read-committed readers see behind it until it times out: 10 s, as Kafka
   * Streams sets for exactly-once, is far above one poll's transaction.
   */
  public static Map<String, Object> transactionalPublisher(String bootstrap, String clientId, String transactionalId) {
    Map<String, Object> conf = changePublisher(bootstrap, clientId);
    conf.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId);
    conf.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, 10_000);
    // A send that cannot complete fails the transaction, and the fold starts over from its outbox.
    conf.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 120_000);
    conf.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
    return conf;
  }

  /**
   * A consumer outside any group, assigned partitions by hand, that reads big polls from the
   * beginning: for restores, warm standby copies, and looking at the last record of a topic.
   * {@code fetchMaxWaitMs} is how long the broker holds a fetch at the end of a partition: short
   * for a reader that moves from partition to partition, whose next fetch waits for the last one.
   */
  public static Map<String, Object> logReader(String bootstrap, String clientId, int fetchMaxWaitMs) {
    Map<String, Object> conf = new HashMap<>();
    conf.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    conf.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
    conf.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    conf.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    conf.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 10_000);
    conf.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, fetchMaxWaitMs);
    // The fold publishes in transactions: what a fenced node sent, or an aborted poll, is never read.
    conf.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    return conf;
  }

  /**
   * The fold's consumer: no auto-commit (the fold's offsets live in the store, Kafka's committed
   * offsets only inform lag tools), and read-committed so aborted transactional writes are never folded.
   * {@code maxPollIntervalMs}: the longest the fold may go between two polls before the group gives
   * its partitions to other nodes.
   */
  public static Map<String, Object> foldConsumer(String bootstrap, String groupId, String groupInstanceId,
                                                 int maxPollRecords, int sessionTimeoutMs, int maxPollIntervalMs) {
    Map<String, Object> conf = new HashMap<>();
    conf.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, maxPollIntervalMs);
    conf.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, sessionTimeoutMs);
    conf.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, Math.max(500, sessionTimeoutMs / 6));
    if (!groupInstanceId.isBlank()) {
      conf.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, groupInstanceId);
    }
    conf.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    conf.put(ConsumerConfig.GROUP_ID_CONFIG, groupId);
    conf.put(ConsumerConfig.CLIENT_ID_CONFIG, groupId + "-fold");
    conf.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    conf.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    conf.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    conf.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, maxPollRecords);
    conf.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, 4 * 1024 * 1024);
    conf.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
    conf.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
    return conf;
  }
}
