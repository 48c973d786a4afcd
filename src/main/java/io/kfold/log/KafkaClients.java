package io.kfold.log;

import io.kfold.config.NodeConfig;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The settings of every Kafka client kfold creates: the user's {@code kafka.properties} (security,
 * network), then kfold's own for each client, which every guarantee of the design depends on.
 * No client is built from settings made elsewhere, so that a secured cluster reaches all of them.
 */
public final class KafkaClients {

  /**
   * Settings that {@code kafka.properties} may not hold, and why: kfold sets them for its guarantees,
   * and a value of the user's would either be overridden in silence or break one.
   */
  public static final Map<String, String> RESERVED = reserved();

  private static Map<String, String> reserved() {
    Map<String, String> reserved = new LinkedHashMap<>();
    reserved.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, "set kafka.bootstrap instead");
    reserved.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG,
        "kfold's readers read committed records only, so that a fenced node's or an aborted poll's output is never read");
    reserved.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "kfold's producers are idempotent: an event is never doubled");
    reserved.put(ProducerConfig.ACKS_CONFIG, "kfold's producers wait for all in-sync replicas: an event is never lost");
    reserved.put(ProducerConfig.RETRIES_CONFIG, "kfold's producers retry: an event is never lost");
    reserved.put(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION,
        "an idempotent producer keeps an entity's events in order only with at most 5");
    reserved.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "the fold names its transactions, which fence a replaced node");
    reserved.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "the fold sets it for its transactions");
    reserved.put(ProducerConfig.PARTITIONER_CLASS_CONFIG, "an entity's events must stay on its partition");
    reserved.put(ConsumerConfig.GROUP_ID_CONFIG, "the fold's group is the app id, each worker's <app>.effects.<worker>");
    reserved.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "set kafka.groupInstanceId instead");
    reserved.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG,
        "kfold commits an offset once what it read is folded or delivered, never before");
    reserved.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "kfold reads every topic from its beginning");
    reserved.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG,
        "kfold's groups spread every type's partitions evenly over the nodes and move only those that must move"
            + " (BalancedAssignor, cooperative); all members of a group must name the same assignor");
    for (String serde : List.of(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG,
        ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG)) {
      reserved.put(serde, "kfold reads and writes its records as bytes");
    }
    return Map.copyOf(reserved);
  }

  private static final List<ConfigDef> DEFINITIONS =
      List.of(ProducerConfig.configDef(), ConsumerConfig.configDef(), AdminClientConfig.configDef());

  /** The names of every setting of a producer, a consumer or an admin client. */
  public static final Set<String> KNOWN = known();

  private static Set<String> known() {
    Set<String> names = new TreeSet<>();
    DEFINITIONS.forEach(definition -> names.addAll(definition.names()));
    return Set.copyOf(names);
  }

  /**
   * The longest pause between a client's attempts to reach a broker, and between retries of a
   * failed request: how long after a broker is back a client may still wait to try it again.
   */
  static final int RECONNECT_BACKOFF_MAX_MS = 500;

  private KafkaClients() {}

  /** Whether Kafka itself holds the setting {@code name} as a password (a JAAS line, a key, a certificate). */
  public static boolean isPassword(String name) {
    return DEFINITIONS.stream().map(definition -> definition.configKeys().get(name))
        .anyMatch(key -> key != null && key.type == ConfigDef.Type.PASSWORD);
  }

  /**
   * A client's settings: the user's {@code kafka.properties} and the cluster's address, then
   * {@code own}, the client's, over them. Every method here starts from it; a client with settings
   * of its own takes them through it too.
   */
  public static Map<String, Object> settings(NodeConfig.Kafka kafka, Map<String, Object> own) {
    Map<String, Object> conf = new HashMap<>(kafka.properties());
    // Back within half a second of a broker that restarted, instead of Kafka's one (a user's value wins).
    conf.putIfAbsent(CommonClientConfigs.RECONNECT_BACKOFF_MAX_MS_CONFIG, RECONNECT_BACKOFF_MAX_MS);
    conf.putIfAbsent(CommonClientConfigs.RETRY_BACKOFF_MAX_MS_CONFIG, RECONNECT_BACKOFF_MAX_MS);
    conf.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrap());
    conf.putAll(own);
    return conf;
  }

  public static Map<String, Object> admin(NodeConfig.Kafka kafka, String clientId) {
    return settings(kafka, Map.of(AdminClientConfig.CLIENT_ID_CONFIG, clientId));
  }

  /** Idempotent and acknowledged by all in-sync replicas: an appended event is neither lost nor doubled. */
  public static Map<String, Object> producer(NodeConfig.Kafka kafka, String clientId) {
    Map<String, Object> conf = settings(kafka, Map.of());
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
  public static Map<String, Object> changePublisher(NodeConfig.Kafka kafka, String clientId) {
    Map<String, Object> conf = producer(kafka, clientId);
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
  public static Map<String, Object> transactionalPublisher(NodeConfig.Kafka kafka, String clientId,
                                                           String transactionalId) {
    Map<String, Object> conf = changePublisher(kafka, clientId);
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
  public static Map<String, Object> logReader(NodeConfig.Kafka kafka, String clientId, int fetchMaxWaitMs) {
    Map<String, Object> conf = settings(kafka, Map.of());
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
   * How a group consumer of kfold's (the fold's, a worker's) belongs to its group. Each node gets its
   * share of every type ({@link BalancedAssignor}), and a rebalance pauses only the partitions that
   * move. Static membership ({@code group.instance.id}): a node that restarts takes its partitions
   * back without a rebalance, and the node directory can remove a node that went silent at once, by
   * name, instead of waiting for its session to time out. A heartbeat every half second, whatever
   * the session timeout: a member learns from its heartbeat that a rebalance began, so the heartbeat
   * interval is how long every rebalance waits for the members to rejoin.
   */
  public static void groupMember(Map<String, Object> conf, String groupInstanceId, int sessionTimeoutMs) {
    conf.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, BalancedAssignor.class.getName());
    conf.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, sessionTimeoutMs);
    conf.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, Math.min(500, sessionTimeoutMs / 3));
    if (!groupInstanceId.isBlank()) {
      conf.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, groupInstanceId);
    }
  }

  /**
   * The fold's consumer ({@link #groupMember}): no auto-commit (the fold's offsets live in the store, Kafka's committed
   * offsets only inform lag tools), and read-committed so aborted transactional writes are never folded.
   * {@code maxPollIntervalMs}: the longest the fold may go between two polls before the group gives
   * its partitions to other nodes.
   */
  public static Map<String, Object> foldConsumer(NodeConfig.Kafka kafka, String groupId, String groupInstanceId,
                                                 int maxPollRecords, int sessionTimeoutMs, int maxPollIntervalMs) {
    Map<String, Object> conf = settings(kafka, Map.of());
    conf.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, maxPollIntervalMs);
    groupMember(conf, groupInstanceId, sessionTimeoutMs);
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
