package io.kfold.cluster;

import io.kfold.KfoldConfig;
import io.kfold.entity.KfoldException;
import io.kfold.fold.FoldWatch;
import io.kfold.query.LocalQueries;
import io.kfold.query.LocalQueries.Page;
import io.kfold.query.Position;
import io.kfold.query.Query;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.http.PoolOptions;
import io.vertx.ext.web.client.WebClient;
import io.vertx.ext.web.client.WebClientOptions;
import org.apache.kafka.common.TopicPartition;

import java.io.IOException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * Answers a query over every partition of its type: this node answers for the partitions it folds,
 * and asks each node that folds others once, for those partitions only; each answers its best
 * {@code limit} items with their positions, and the pages are merged in (value, key) order. An
 * answer is whole or a failure: a partition that no node is known to fold (a rebalance) is waited
 * for up to {@code http.forwardWaitMs}, then the query fails with 503, as it does when a node asked
 * no longer folds what it was asked for. A query with a minimum position (a write's answer) is answered
 * by the node that folds the position's partition once its fold has passed it, so it holds that write.
 */
public final class ClusterQueries {

  /**
   * The header of a query one node asks another: the numbers of the type's partitions to answer
   * for. The node asked answers for those alone, from its own store, or fails if it does not fold
   * one of them; it never asks further.
   */
  public static final String PARTITIONS = "X-Kfold-Partitions";

  private final Vertx vertx;
  private final KfoldConfig config;
  private final Ownership ownership;
  private final NodeDirectory directory;
  private final LocalQueries local;
  private final FoldWatch watch;
  private final WebClient client;

  /**
   * A query's {@code ?minPosition=&timeoutMs=}: the node that folds the position's partition answers
   * once its fold has passed the position, or fails with 504 after {@code timeoutMs}.
   */
  public record MinPosition(Position position, long timeoutMs) {}

  public ClusterQueries(Vertx vertx, KfoldConfig config, Ownership ownership, NodeDirectory directory,
                        LocalQueries local, FoldWatch watch) {
    this.vertx = vertx;
    this.watch = watch;
    this.config = config;
    this.ownership = ownership;
    this.directory = directory;
    this.local = local;
    this.client = WebClient.create(vertx, new WebClientOptions(), new PoolOptions().setHttp1MaxSize(64));
  }

  /**
   * A query's minimum position from its token; a 400 for a malformed token or one of another type's
   * events (a query reads its own type's partitions only).
   */
  public MinPosition minPosition(Query query, String token, long timeoutMs) {
    Position position;
    try {
      position = Position.parse(token);
    } catch (IllegalArgumentException e) {
      throw KfoldException.badRequest(e.getMessage());
    }
    if (!position.topic().equals(config.eventsTopic(query.type()))
        || !ownership.partitions(query.type()).contains(position.topicPartition())) {
      throw KfoldException.badRequest("minPosition '" + token + "' is not a position of " + query.type()
          + " events: pass the 'position' of a write of " + query.type());
    }
    return new MinPosition(position, timeoutMs);
  }

  /**
   * The page of {@code query} over every entity of its type.
   *
   * @param rawQuery the request's query string, passed on as it is to the nodes asked
   * @param min      the position the answer must include, or null
   */
  public Future<Page> run(Query query, String rawQuery, MinPosition min) {
    long deadline = System.currentTimeMillis() + config.http().forwardWaitMs();
    List<TopicPartition> partitions = ownership.partitions(query.type());
    List<Future<String>> owners = new ArrayList<>(partitions.size());
    partitions.forEach(partition -> {
      Promise<String> owner = Promise.promise();
      findOwner(partition, deadline, owner);
      owners.add(owner.future());
    });
    return Future.all(owners).compose(found -> {
      Set<TopicPartition> here = new HashSet<>();
      Map<String, List<TopicPartition>> byNode = new LinkedHashMap<>();  // one request per node, however many partitions
      for (int i = 0; i < partitions.size(); i++) {
        String url = owners.get(i).result();
        if (url == null) {
          here.add(partitions.get(i));
        } else {
          byNode.computeIfAbsent(url, u -> new ArrayList<>()).add(partitions.get(i));
        }
      }
      List<Future<Page>> pages = new ArrayList<>();
      if (!here.isEmpty()) {
        pages.add(answerHere(query, here, min));
      }
      byNode.forEach((url, theirs) -> pages.add(ask(url, query, rawQuery, theirs)));
      return Future.all(pages).map(all -> Page.merge(all.list(), query.limit(), query.scannedIndex()));
    });
  }

  /**
   * The page of {@code query} over the partitions another node asked this one for ({@link #PARTITIONS}),
   * with its items' positions; fails with 503 if this node does not fold one of them, or has not
   * caught up on it yet.
   */
  public Future<Page> runAsked(Query query, String askedPartitions, MinPosition min) {
    Set<TopicPartition> asked = new HashSet<>();
    for (String number : askedPartitions.split(",")) {
      try {
        asked.add(new TopicPartition(config.eventsTopic(query.type()), Integer.parseInt(number.trim())));
      } catch (NumberFormatException e) {
        return Future.failedFuture(KfoldException.badRequest(PARTITIONS + " must list partition numbers, was '"
            + askedPartitions + "'"));
      }
    }
    return answerHere(query, asked, min);
  }

  /**
   * This node's page over partitions it folds, read on a worker thread (the store blocks); when one
   * of them is the partition of {@code min}, once the fold has passed that position.
   */
  private Future<Page> answerHere(Query query, Set<TopicPartition> partitions, MinPosition min) {
    KfoldException notFolded = notCurrent(partitions);
    if (notFolded != null) {
      return Future.failedFuture(notFolded);
    }
    Future<Void> folded = min == null || !partitions.contains(min.position().topicPartition())
        ? Future.succeededFuture()
        : watch.awaitFolded(min.position().topicPartition(), min.position().offset(), min.timeoutMs());
    return folded.compose(v -> vertx.executeBlocking(() -> {
      Page page = local.run(query, key -> partitions.contains(ownership.partition(query.type(), key)));
      // A partition taken away during the scan may have been read only in part: no answer rather than a partial one.
      KfoldException takenAway = notCurrent(partitions);
      if (takenAway != null) {
        throw takenAway;
      }
      return page;
    }, false));
  }

  /** A 503 naming the partitions this node does not fold or has not caught up on; null when it is current on all. */
  private KfoldException notCurrent(Set<TopicPartition> partitions) {
    List<String> missing = partitions.stream().filter(p -> !ownership.current(p)).map(TopicPartition::toString)
        .sorted().toList();
    return missing.isEmpty() ? null : KfoldException.unavailable("node " + directory.node() + " does not fold "
        + missing + " or is still catching up on them (a rebalance?); retry");
  }

  private Future<Page> ask(String url, Query query, String rawQuery, List<TopicPartition> partitions) {
    String numbers = partitions.stream().map(p -> String.valueOf(p.partition())).collect(Collectors.joining(","));
    return client.getAbs(url + "/v1/" + query.type() + (rawQuery == null || rawQuery.isEmpty() ? "" : "?" + rawQuery))
        .timeout(config.http().maxWaitMs() + config.http().forwardWaitMs() + 5_000)
        .putHeader(Forwarder.FORWARDED_BY, directory.node())
        .putHeader(PARTITIONS, numbers)
        .send()
        .recover(e -> Future.failedFuture(KfoldException.unavailable("asking " + url + " for " + query.type()
            + " partitions " + numbers + " failed: " + e.getMessage())))
        .compose(answer -> {
          if (answer.statusCode() != 200) {
            return Future.failedFuture(Forwarder.problem(url, answer.statusCode(), answer.body()));
          }
          try {
            return Future.succeededFuture(Page.parse(answer.body() == null ? new byte[0] : answer.body().getBytes()));
          } catch (IOException | IllegalArgumentException e) {
            return Future.failedFuture(KfoldException.unavailable("the node at " + url + " answered a page this node"
                + " cannot read: " + e.getMessage()));
          }
        });
  }

  /**
   * Completes with null when this node folds the partition and is current on it, with the URL of
   * the node that folds it as the claims say, or, past the deadline, fails with 503. While this node
   * catches up on a partition it was given, it waits rather than asking the previous owner.
   */
  private void findOwner(TopicPartition partition, long deadline, Promise<String> owner) {
    var claim = directory.owner(partition);
    if (ownership.current(partition)) {
      owner.complete(null);
    } else if (!ownership.owns(partition) && claim.isPresent() && !claim.get().node().equals(directory.node())) {
      owner.complete(claim.get().url());
    } else if (System.currentTimeMillis() > deadline) {
      owner.fail(KfoldException.unavailable("no node is known to fold " + partition + " and to have caught up on it"
          + " at the moment (a rebalance?), so a query of its type would be incomplete; retry"));
    } else {
      vertx.setTimer(100, id -> findOwner(partition, deadline, owner));
    }
  }

  public void close() {
    client.close();
  }
}
