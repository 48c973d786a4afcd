package io.kfold.cluster;

import io.kfold.config.NodeConfig;
import io.kfold.entity.KfoldException;
import io.kfold.fold.FoldWatch;
import io.kfold.log.KafkaClients;
import io.kfold.query.Position;
import io.kfold.view.ViewType;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Read your writes for a view's rows ({@code ?minPosition=} on its reads): waits until every
 * contribution that the writes up to a position brought is applied to the rows of some
 * partitions this node folds. The position names an offset of a source type's events; the rows
 * live in the view's contributions partitions, which other folds write to as well. Three steps:
 * <ol>
 *   <li>the node that folds the position's partition has folded past it and published what that
 *   brought ({@link FoldWatch#awaitPublished}, asked of that node over {@code GET
 *   /v1/_positions/{position}} when it is another one): every contribution of those writes is then
 *   in a committed transaction, so below the end offset of its contributions partition;</li>
 *   <li>then the end offsets (high watermarks) of the rows' partitions are read: each is above every
 *   such contribution, whatever transactions of other folds are still open below it;</li>
 *   <li>this node's fold has read each of those partitions up to that end and written what it read
 *   ({@link FoldWatch#awaitPosition}): its consumer reads committed records only, in order, so it is
 *   past each of those contributions, which are applied (or were applied before, for a copy).</li>
 * </ol>
 * Each step is exact, so the rows read after them hold those writes; waiting for less (the fold
 * past the position, or the partitions' last stable offsets) could miss a contribution still in
 * an open transaction. A step not done within the caller's {@code timeoutMs} fails with 504.
 * Nothing here blocks an event loop: Kafka is asked on a worker thread.
 */
public final class ViewPositions {

  private final Vertx vertx;
  private final NodeConfig config;
  private final Ownership ownership;
  private final Forwarder forwarder;
  private final FoldWatch watch;
  /** Reads end offsets; made on first use, on a worker thread. */
  private Admin admin;
  private boolean closed;

  public ViewPositions(Vertx vertx, NodeConfig config, Ownership ownership, Forwarder forwarder, FoldWatch watch) {
    this.vertx = vertx;
    this.config = config;
    this.ownership = ownership;
    this.forwarder = forwarder;
    this.watch = watch;
  }

  /**
   * The position a token names, when it is a position of the events of one of {@code types}; a
   * 400 saying what is wrong otherwise.
   */
  public Position position(String token, Collection<String> types) {
    Position position;
    try {
      position = Position.parse(token);
    } catch (IllegalArgumentException e) {
      throw KfoldException.badRequest(e.getMessage());
    }
    for (String type : types) {
      if (config.eventsTopic(type).equals(position.topic())
          && ownership.partitions(type).contains(position.topicPartition())) {
        return position;
      }
    }
    throw KfoldException.badRequest("minPosition '" + token + "' is not a position of the events of " + types
        + ": pass the 'position' of a write of one of them");
  }

  /** A view's minimum position: a position of the events of a type the view is from. */
  public Position position(ViewType view, String token) {
    return position(token, view.definition().from());
  }

  /**
   * The contributions partition that holds a row: the one place that knows where a row lives, for
   * the waits of reads of one row.
   */
  public TopicPartition rowPartition(ViewType view, String rowKey) {
    return ownership.partition(view.name(), rowKey);
  }

  /**
   * Completes once the rows of {@code rowPartitions} (this node folds them) hold every contribution
   * of the writes up to {@code position}: the three steps of this class, in {@code timeoutMs} in all.
   */
  public Future<Void> awaitApplied(Position position, Collection<TopicPartition> rowPartitions, long timeoutMs) {
    long deadline = System.currentTimeMillis() + timeoutMs;
    return awaitPublished(position, timeoutMs, false)
        .compose(v -> endOffsets(rowPartitions, left(deadline)))
        .compose(ends -> {
          List<Future<Void>> read = new ArrayList<>();
          ends.forEach((partition, end) -> read.add(watch.awaitPosition(partition, end, left(deadline))));
          return Future.all(read);
        })
        .mapEmpty();
  }

  /**
   * Completes once the node that folds the position's partition has published everything the
   * writes up to it brought (asked over HTTP when another node folds it); {@code asked}: this
   * node was asked by another, and waits itself rather than ask further.
   */
  public Future<Void> awaitPublished(Position position, long timeoutMs, boolean asked) {
    TopicPartition source = position.topicPartition();
    if (asked) {
      return watch.awaitPublished(source, position.offset(), timeoutMs);
    }
    return forwarder.getFromOwner(source, "/v1/_positions/" + position.token() + "?timeoutMs=" + timeoutMs, timeoutMs)
        .compose(answer -> answer != null ? Future.succeededFuture()
            : watch.awaitPublished(source, position.offset(), timeoutMs));
  }

  /** The end offsets (high watermarks: committed or not) of the partitions, read now. */
  private Future<Map<TopicPartition, Long>> endOffsets(Collection<TopicPartition> partitions, long timeoutMs) {
    return vertx.executeBlocking(() -> {
      Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
      partitions.forEach(partition -> latest.put(partition, OffsetSpec.latest()));
      Map<TopicPartition, Long> ends = new HashMap<>();
      try {
        admin().listOffsets(latest, new ListOffsetsOptions(IsolationLevel.READ_UNCOMMITTED)).all()
            .get(timeoutMs, TimeUnit.MILLISECONDS).forEach((partition, info) -> ends.put(partition, info.offset()));
      } catch (TimeoutException e) {
        throw KfoldException.timeout("the end offsets of " + partitions + " could not be read within " + timeoutMs
            + " ms");
      } catch (ExecutionException e) {
        throw KfoldException.unavailable("the end offsets of " + partitions + " could not be read: " + e.getCause());
      }
      return ends;
    }, false);
  }

  private synchronized Admin admin() {
    if (closed) {
      throw KfoldException.unavailable("the node is stopping");
    }
    if (admin == null) {
      admin = Admin.create(KafkaClients.admin(config.kafka(), config.app() + "-view-positions"));
    }
    return admin;
  }

  private static long left(long deadline) {
    return Math.max(1, deadline - System.currentTimeMillis());
  }

  /** Closes the Kafka client, on a worker thread. */
  public Future<Void> close() {
    return vertx.executeBlocking(() -> {
      synchronized (this) {
        closed = true;
        if (admin != null) {
          admin.close();
        }
      }
      return null;
    });
  }
}
