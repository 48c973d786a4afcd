package io.kfold.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.KfoldConfig;
import io.kfold.entity.Envelopes;
import io.kfold.fold.FoldProgress;
import io.kfold.log.KafkaConsumerLoop;
import io.kfold.log.KafkaClients;
import io.kfold.log.Supervisor;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Which node folds which partition, and where it answers: each node writes a claim (its URL, the
 * partitions it folds, and the group generation they were given in) to the compacted
 * {@code <app>.nodes} topic whenever its assignment changes, and reads everyone's claims. A node
 * whose claim a later generation has passed is dead ({@link ClusterView}): it keeps no partition,
 * and after a minute it leaves the view.
 *
 * <p>Its consumer runs on a thread of its own, as a loop under the node's {@link Supervisor}.
 */
public final class NodeDirectory implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(NodeDirectory.class);

  /** How long a node whose claim the group has moved past stays in view, shown as dead. */
  private static final Duration KEEP_DEAD = Duration.ofMinutes(1);

  /** One node's claim. */
  public record Claim(String node, String url, int generation, Set<String> partitions) {}

  private final KfoldConfig config;
  private final String node;
  private final FoldProgress progress;
  private final ClusterView view;
  private final Supervisor supervisor;
  private volatile String url;
  private KafkaProducer<String, byte[]> producer;
  private Supervisor.Running loop;

  public NodeDirectory(KfoldConfig config, String node, FoldProgress progress, Supervisor supervisor) {
    this(config, node, progress, supervisor, Clock.systemUTC());
  }

  NodeDirectory(KfoldConfig config, String node, FoldProgress progress, Supervisor supervisor, Clock clock) {
    this.config = config;
    this.node = node;
    this.progress = progress;
    this.supervisor = supervisor;
    this.view = new ClusterView(clock, KEEP_DEAD);
  }

  /** Blocks: run it on a worker thread. */
  public void start(String advertisedUrl) {
    this.url = advertisedUrl;
    producer = new KafkaProducer<>(KafkaClients.producer(config.kafka().bootstrap(), config.app() + "-directory"),
        new StringSerializer(), new ByteArraySerializer());
    loop = supervisor.start("directory", new ClaimsLoop());
  }

  public String node() {
    return node;
  }

  /** The claim of the live node that folds the partition, as far as the claims say; empty while none claims it. */
  public Optional<Claim> owner(TopicPartition partition) {
    return view.owner(partition.toString());
  }

  /**
   * The partitions this node keeps a warm copy of: for each partition the latest generation's nodes
   * claim, the {@code replicas} other nodes that rank highest for it (rendezvous hashing, so that
   * each node works out the same answer and a node that comes or goes moves few standbys).
   */
  public Set<TopicPartition> standbys(int replicas) {
    if (replicas == 0) {
      return Set.of();
    }
    List<Claim> live = view.latestGeneration();
    Set<TopicPartition> standbys = new HashSet<>();
    for (Claim owner : live) {
      for (String partition : owner.partitions()) {
        live.stream().filter(c -> !c.node().equals(owner.node()))
            .sorted(java.util.Comparator.comparingInt((Claim c) -> (c.node() + "/" + partition).hashCode() * 0x9E3779B9)
                .thenComparing(Claim::node))
            .limit(replicas)
            .filter(c -> c.node().equals(node))
            .forEach(c -> standbys.add(partitionOf(partition)));
      }
    }
    return standbys;
  }

  private static TopicPartition partitionOf(String name) {
    int dash = name.lastIndexOf('-');
    return new TopicPartition(name.substring(0, dash), Integer.parseInt(name.substring(dash + 1)));
  }

  /** The nodes in view, by name: each one's latest claim, and since when it is dead if it is. */
  public Map<String, ClusterView.Node> nodes() {
    return view.nodes();
  }

  /** Publishes this node's claim whenever its partitions or generation change, and reads everyone's. */
  private final class ClaimsLoop extends KafkaConsumerLoop<String, byte[]> {
    private Set<TopicPartition> claimed;
    private int claimedGeneration;

    @Override
    public void open() {
      // Read from the beginning again after a restart: the compacted topic holds every claim.
      claimed = null;
      claimedGeneration = -2;
      consumer = new KafkaConsumer<>(Map.of(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, config.kafka().bootstrap(),
          ConsumerConfig.CLIENT_ID_CONFIG, config.app() + "-directory-reader",
          ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false), new StringDeserializer(), new ByteArrayDeserializer());
      TopicPartition topic = new TopicPartition(config.nodesTopic(), 0);
      consumer.assign(List.of(topic));
      consumer.seekToBeginning(List.of(topic));
    }

    @Override
    public void runOnce() {
      Set<TopicPartition> folded = new HashSet<>(progress.lag().keySet());
      int generation = progress.generation();
      if (generation != claimedGeneration || !folded.equals(claimed)) {
        publish(folded, generation);
        claimed = folded;
        claimedGeneration = generation;
      }
      for (ConsumerRecord<String, byte[]> record : consumer.poll(Duration.ofMillis(200))) {
        if (record.value() == null) {
          view.withdrawn(record.key());
        } else {
          try {
            view.claimed(decode(record.key(), record.value()), Instant.ofEpochMilli(record.timestamp()));
          } catch (IOException e) {
            LOG.warn("skipping an unreadable claim of node {} at offset {}: {}", record.key(), record.offset(),
                e.toString());
          }
        }
      }
    }

    @Override
    public void close(boolean stopping) {
      closeConsumer(Duration.ofSeconds(5));
    }
  }

  private void publish(Set<TopicPartition> partitions, int generation) {
    ObjectNode claim = JsonNodeFactory.instance.objectNode().put("url", url).put("generation", generation);
    ArrayNode list = claim.putArray("partitions");
    partitions.stream().map(TopicPartition::toString).sorted().forEach(list::add);
    producer.send(new ProducerRecord<>(config.nodesTopic(), node, Envelopes.toBytes(claim)), (metadata, error) -> {
      if (error != null) {
        LOG.warn("publishing this node's partitions failed; the next change publishes them again: {}", error.toString());
      }
    });
  }

  private static Claim decode(String node, byte[] value) throws IOException {
    JsonNode json = Envelopes.parse(value);
    Set<String> partitions = new HashSet<>();
    json.path("partitions").forEach(p -> partitions.add(p.asText()));
    return new Claim(node, json.path("url").asText(), json.path("generation").asInt(-1), Set.copyOf(partitions));
  }

  /** Withdraws this node's claim and stops. */
  @Override
  public void close() {
    try {
      if (loop != null) {
        loop.stop(Duration.ofSeconds(10));
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    if (producer != null) {
      producer.send(new ProducerRecord<>(config.nodesTopic(), node, null));
      producer.close(Duration.ofSeconds(10));
    }
  }
}
