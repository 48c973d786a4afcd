package io.kfold.cluster;

import io.kfold.config.NodeConfig;
import io.kfold.entity.KfoldException;
import io.kfold.fold.FoldProgress;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.utils.Utils;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Whether this node folds the partition of an entity. Only the node that folds it can decide the
 * entity's writes against its current state and learn the fold's verdict.
 */
public final class Ownership {

  private static final long CHECK_EVERY_MS = 20;

  private final NodeConfig config;
  private final Map<String, Integer> partitionsByType;
  private final FoldProgress progress;

  public Ownership(NodeConfig config, Map<String, Integer> partitionsByType, FoldProgress progress) {
    this.config = config;
    this.partitionsByType = Map.copyOf(partitionsByType);
    this.progress = progress;
  }

  /** The events partition of an entity, as Kafka's default partitioner places its key. */
  public TopicPartition partition(String type, String key) {
    int partitions = partitionsByType.get(type);
    return new TopicPartition(config.eventsTopic(type),
        Utils.toPositive(Utils.murmur2(key.getBytes(StandardCharsets.UTF_8))) % partitions);
  }

  /** Every events partition of the type: a query of the type reads them all. */
  public List<TopicPartition> partitions(String type) {
    List<TopicPartition> partitions = new ArrayList<>();
    for (int partition = 0; partition < partitionsByType.get(type); partition++) {
      partitions.add(new TopicPartition(config.eventsTopic(type), partition));
    }
    return partitions;
  }

  public boolean owns(String type, String key) {
    return owns(partition(type, key));
  }

  public boolean owns(TopicPartition partition) {
    return progress.folds(partition);
  }

  /**
   * Whether this node keeps a warm copy of the events partition (a standby: it follows the
   * partition's changelog) and has read that copy to its end once: a copy that may be behind the
   * node that folds the partition, but whole as of some moment.
   */
  public boolean warmCopy(TopicPartition events) {
    return progress.standbyCaughtUp(new TopicPartition(config.changelogTopic(typeOf(events)), events.partition()));
  }

  private String typeOf(TopicPartition events) {
    for (String type : partitionsByType.keySet()) {
      if (config.eventsTopic(type).equals(events.topic())) {
        return type;
      }
    }
    throw new IllegalArgumentException(events.topic() + " is the events topic of no type");
  }

  /** Whether this node folds the partition and has caught up on it since it was given it. */
  public boolean current(TopicPartition partition) {
    return progress.current(partition);
  }

  /**
   * Completes once this node is {@link #current} on the partition. Fails with 503 as soon as it does
   * not fold the partition (it moved: the caller retries, and reaches the new owner), or at
   * {@code deadline} while it is still catching up. Reads and writes of the partition's entities wait for this: a node that was
   * just given a partition back holds, until then, states older than what the node that folded it
   * in between acknowledged.
   *
   * @param what the read or write, for the 503's detail ("this node cannot read users 'u1' yet")
   */
  public Future<Void> awaitCurrent(Vertx vertx, TopicPartition partition, long deadline, String what) {
    if (current(partition)) {
      return Future.succeededFuture();
    }
    if (!owns(partition) || System.currentTimeMillis() > deadline) {
      return Future.failedFuture(KfoldException.unavailable(what + ": partition " + partition
          + (owns(partition) ? " is still being caught up on" : " moved to another node") + "; retry"));
    }
    Promise<Void> current = Promise.promise();
    vertx.setTimer(CHECK_EVERY_MS, id -> awaitCurrent(vertx, partition, deadline, what).onComplete(current));
    return current.future();
  }
}
