package io.kfold.log;

import io.kfold.config.NodeConfig;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.errors.TopicExistsException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/** Creates the topics of each entity type that do not exist yet, and waits until they can be written. */
public final class Topics {

  private static final Logger LOG = LoggerFactory.getLogger(Topics.class);
  private static final long TIMEOUT_MS = 30_000;

  private Topics() {}

  /** Blocks: run it on a worker thread. Answers the number of partitions of each type's events topic. */
  public static Map<String, Integer> ensure(Admin admin, NodeConfig config, Collection<String> types)
      throws InterruptedException, ExecutionException, java.util.concurrent.TimeoutException {
    Set<String> existing = admin.listTopics().names().get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
    List<NewTopic> missing = new ArrayList<>();
    List<String> all = new ArrayList<>();
    Map<String, Integer> partitionsByType = new java.util.HashMap<>();
    for (String type : types) {
      String events = config.eventsTopic(type);
      int partitions = config.kafka().partitions();
      if (existing.contains(events)) {
        // The changes topic follows the partitions of the events topic as it is, not as configured.
        partitions = admin.describeTopics(List.of(events)).allTopicNames().get(TIMEOUT_MS, TimeUnit.MILLISECONDS)
            .get(events).partitions().size();
      } else {
        missing.add(topic(events, partitions, config, Map.of("retention.ms", "-1", "cleanup.policy", "delete")));
      }
      if (!existing.contains(config.changesTopic(type))) {
        missing.add(topic(config.changesTopic(type), partitions, config, Map.of()));
      }
      if (!existing.contains(config.changelogTopic(type))) {
        // Compacted: the latest of each item is enough to restore a partition.
        missing.add(topic(config.changelogTopic(type), partitions, config, Map.of("cleanup.policy", "compact")));
      }
      if (!existing.contains(config.deadLetterTopic(type))) {
        missing.add(topic(config.deadLetterTopic(type), 1, config, Map.of("retention.ms", "-1")));
      }
      all.addAll(List.of(events, config.changesTopic(type), config.changelogTopic(type), config.deadLetterTopic(type)));
      partitionsByType.put(type, partitions);
    }
    if (!existing.contains(config.nodesTopic())) {
      // Nodes write their claims every half second as heartbeats, and a starting node reads the topic
      // from its beginning: segments roll every ten minutes, so that compaction keeps it to the latest claims.
      missing.add(topic(config.nodesTopic(), 1, config, Map.of("cleanup.policy", "compact",
          "segment.ms", "600000", "min.cleanable.dirty.ratio", "0.1")));
    }
    all.add(config.nodesTopic());
    for (var effect : config.effects()) {
      String deadLetters = config.effectDeadLetterTopic(effect.name());
      if (!existing.contains(deadLetters)) {
        // One partition: the parking lot is rebuilt by reading it in order.
        missing.add(topic(deadLetters, 1, config, Map.of("retention.ms", "-1")));
      }
      all.add(deadLetters);
    }
    if (!missing.isEmpty()) {
      try {
        admin.createTopics(missing).all().get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
        LOG.info("created topics {}", missing.stream().map(NewTopic::name).toList());
      } catch (ExecutionException e) {
        if (!(e.getCause() instanceof TopicExistsException)) {
          throw e;  // another node creating them at the same time is fine
        }
      }
    }
    awaitLeaders(admin, all);
    return partitionsByType;
  }

  /**
   * The metadata can name a leader a moment before that broker serves the partition; asking each
   * leader for its end offset proves it does.
   */
  private static boolean leadersAnswer(Admin admin, Map<String, TopicDescription> descriptions) throws InterruptedException {
    Map<TopicPartition, OffsetSpec> partitions = new java.util.HashMap<>();
    descriptions.values().forEach(d -> d.partitions().forEach(p ->
        partitions.put(new TopicPartition(d.name(), p.partition()), OffsetSpec.latest())));
    try {
      admin.listOffsets(partitions).all().get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
      return true;
    } catch (ExecutionException | java.util.concurrent.TimeoutException e) {
      return false;
    }
  }

  private static NewTopic topic(String name, int partitions, NodeConfig config, Map<String, String> settings) {
    return new NewTopic(name, partitions, config.kafka().replicationFactor()).configs(settings);
  }

  /** A producer that writes before every partition has a leader can fail with out-of-order sequences. */
  private static void awaitLeaders(Admin admin, List<String> topics) throws InterruptedException, ExecutionException,
      java.util.concurrent.TimeoutException {
    long deadline = System.currentTimeMillis() + TIMEOUT_MS;
    while (true) {
      Map<String, TopicDescription> descriptions;
      try {
        descriptions = admin.describeTopics(topics).allTopicNames().get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
      } catch (ExecutionException e) {
        descriptions = Map.of();  // metadata not propagated yet
      }
      boolean ready = descriptions.size() == topics.size() && descriptions.values().stream()
          .flatMap(d -> d.partitions().stream()).map(TopicPartitionInfo::leader).allMatch(l -> l != null && !l.isEmpty())
          && leadersAnswer(admin, descriptions);
      if (ready) {
        return;
      }
      if (System.currentTimeMillis() > deadline) {
        throw new java.util.concurrent.TimeoutException("topics " + topics + " have no leader after " + TIMEOUT_MS + " ms");
      }
      Thread.sleep(100);
    }
  }
}
