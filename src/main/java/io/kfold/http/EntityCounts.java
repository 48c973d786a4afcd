package io.kfold.http;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.cluster.Forwarder;
import io.kfold.cluster.NodeClients;
import io.kfold.cluster.NodeDirectory;
import io.kfold.cluster.Ownership;
import io.kfold.config.NodeConfig;
import io.kfold.entity.EntityType;
import io.kfold.entity.KfoldException;
import io.kfold.query.IndexBuilds;
import io.kfold.store.EntityStore;
import io.kfold.store.IndexScan;
import io.kfold.types.EntityTypes;
import io.kfold.types.Envelopes;
import io.kfold.view.ViewType;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.client.WebClient;
import org.apache.kafka.common.TopicPartition;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * {@code GET /v1/_types}: the entity types with their indexes, the views made from them, and how
 * many entities each has. A node's store may also hold copies of partitions other nodes fold
 * (standbys, or left from before a rebalance), so each partition is counted on the node that folds
 * it: this node counts its own and asks each other node once for the partitions it folds
 * ({@link #PARTITIONS}). A partition no node answered for (a rebalance) is asked again until
 * {@code http.forwardWaitMs} is spent; then the answer is a 503, never a count that misses some.
 *
 * <p>Counting reads every key of the partitions counted: it serves an operator's page, not a hot path.
 */
final class EntityCounts {

  /** The header of a count one node asks another: the events partitions to count ({@code topic-n}, comma separated). */
  static final String PARTITIONS = "X-Kfold-Count-Partitions";
  private static final int CHUNK = 10_000;
  private static final long RETRY_EVERY_MS = 100;

  private final Vertx vertx;
  private final NodeConfig config;
  private final EntityTypes types;
  private final EntityStore store;
  private final Ownership ownership;
  private final NodeDirectory directory;
  private final Forwarder forwarder;
  private final WebClient client;
  /** The user types by their events topic. */
  private final Map<String, String> typeByTopic = new HashMap<>();

  EntityCounts(Vertx vertx, NodeConfig config, EntityTypes types, EntityStore store, Ownership ownership,
               NodeDirectory directory, Forwarder forwarder) {
    this.vertx = vertx;
    this.config = config;
    this.types = types;
    this.store = store;
    this.ownership = ownership;
    this.directory = directory;
    this.forwarder = forwarder;
    this.client = WebClient.create(vertx, NodeClients.web(config));
    types.all().forEach(type -> typeByTopic.put(config.eventsTopic(type.name()), type.name()));
  }

  void handle(RoutingContext ctx) {
    String asked = ctx.request().getHeader(PARTITIONS);
    if (asked != null) {
      countHere(parse(asked)).onSuccess(counts -> {
        ObjectNode body = JsonNodeFactory.instance.objectNode();
        ObjectNode byPartition = body.putObject("partitions");
        counts.forEach((partition, count) -> byPartition.put(partition.toString(), count));
        send(ctx, body);
      }).onFailure(ctx::fail);
      return;
    }
    List<TopicPartition> all = new ArrayList<>();
    types.all().forEach(type -> all.addAll(ownership.partitions(type.name())));
    count(all, System.currentTimeMillis() + config.http().forwardWaitMs(), null).onSuccess(counts -> {
      Map<String, Long> byType = new HashMap<>();
      counts.forEach((partition, count) -> byType.merge(typeByTopic.get(partition.topic()), count, Long::sum));
      send(ctx, catalog(byType));
    }).onFailure(ctx::fail);
  }

  /** {@code {"types": [{name, indexes: [{name, path, kind}], views: [names], partitions, entities}]}}. */
  private ObjectNode catalog(Map<String, Long> entities) {
    ObjectNode body = JsonNodeFactory.instance.objectNode();
    var list = body.putArray("types");
    for (EntityType type : types.all()) {
      ObjectNode item = list.addObject().put("name", type.name());
      var indexes = item.putArray("indexes");
      types.indexes(type.name()).forEach(index -> indexes.addObject().put("name", index.name()).put("path", index.path())
          .put("kind", index.kind().configName()));
      var views = item.putArray("views");
      for (ViewType view : types.views()) {
        if (view.definition().from().contains(type.name())) {
          views.add(view.definition().name());
        }
      }
      item.put("partitions", ownership.partitions(type.name()).size())
          .put("entities", entities.getOrDefault(type.name(), 0L));
    }
    return body;
  }

  /**
   * The count of each of the partitions, from the nodes that fold them; those no node answered for
   * are asked again until the deadline.
   */
  private Future<Map<TopicPartition, Long>> count(Collection<TopicPartition> partitions, long deadline, String lastError) {
    Set<TopicPartition> here = new HashSet<>();
    Map<String, List<TopicPartition>> byNode = new LinkedHashMap<>();  // one request per node
    for (TopicPartition partition : partitions) {
      var claim = directory.owner(partition);
      if (ownership.current(partition)) {
        here.add(partition);
      } else if (!ownership.owns(partition) && claim.isPresent() && !claim.get().node().equals(directory.node())) {
        byNode.computeIfAbsent(claim.get().url(), url -> new ArrayList<>()).add(partition);
      }
      // otherwise no node is known to fold it yet: it is asked again below
    }
    List<Future<Map<TopicPartition, Long>>> parts = new ArrayList<>();
    if (!here.isEmpty()) {
      parts.add(countHere(here));
    }
    byNode.forEach((url, theirs) -> parts.add(ask(url, theirs)));
    return Future.join(parts).transform(done -> {
      Map<TopicPartition, Long> counted = new HashMap<>();
      String error = lastError;
      for (Future<Map<TopicPartition, Long>> part : parts) {
        if (part.succeeded()) {
          counted.putAll(part.result());
        } else {
          error = part.cause().getMessage();
        }
      }
      List<TopicPartition> missing = partitions.stream().filter(p -> !counted.containsKey(p)).toList();
      if (missing.isEmpty()) {
        return Future.succeededFuture(counted);
      }
      if (System.currentTimeMillis() + RETRY_EVERY_MS > deadline) {
        return Future.failedFuture(KfoldException.unavailable("no node counted the entities of "
            + missing.stream().map(TopicPartition::toString).sorted().toList()
            + " within http.forwardWaitMs (a rebalance?); retry" + (error == null ? "" : ". Last: " + error)));
      }
      String errorSoFar = error;
      return vertx.timer(RETRY_EVERY_MS).compose(v -> count(missing, deadline, errorSoFar)).map(rest -> {
        counted.putAll(rest);
        return counted;
      });
    });
  }

  /**
   * The entities of each of the partitions this node folds and has caught up on, read on a worker
   * thread; a partition it does not (or no longer, by the end of the count) is left out of the answer.
   */
  private Future<Map<TopicPartition, Long>> countHere(Set<TopicPartition> partitions) {
    return vertx.executeBlocking(() -> {
      Map<TopicPartition, Long> counts = new HashMap<>();
      partitions.stream().filter(ownership::current).forEach(partition -> counts.put(partition, 0L));
      Set<String> typesCounted = counts.keySet().stream().map(p -> typeByTopic.get(p.topic())).collect(Collectors.toSet());
      for (String type : typesCounted) {
        IndexBuilds.requireBuilt(store, type, EntityStore.ALL_ENTITIES);
        String after = null;
        List<IndexScan.Entry> entries;
        do {
          entries = store.scanIndex(IndexScan.allEntities(type, after, CHUNK, false));
          for (IndexScan.Entry entry : entries) {
            counts.computeIfPresent(ownership.partition(type, entry.key()), (partition, count) -> count + 1);
            after = entry.key();
          }
        } while (entries.size() == CHUNK);
      }
      // A partition taken away during the count may have been counted in part: its new node counts it.
      counts.keySet().removeIf(partition -> !ownership.current(partition));
      return counts;
    }, false);
  }

  private Future<Map<TopicPartition, Long>> ask(String url, List<TopicPartition> partitions) {
    String uri = "/v1/_types";
    // The node asks on its own account: the caller's read was checked where the request came in.
    return forwarder.fromThisNode(client.getAbs(url + uri), HttpMethod.GET, uri)
        .timeout(config.http().forwardWaitMs() + 5_000)
        .putHeader(PARTITIONS, partitions.stream().map(TopicPartition::toString).collect(Collectors.joining(",")))
        .send()
        .compose(answer -> {
          if (answer.statusCode() != 200) {
            return Future.failedFuture(new IllegalStateException("the node at " + url + " answered "
                + answer.statusCode() + ": " + answer.bodyAsString()));
          }
          Map<TopicPartition, Long> counts = new HashMap<>();
          try {
            Envelopes.parse(answer.body().getBytes()).path("partitions").fields()
                .forEachRemaining(field -> counts.put(partitionOf(field.getKey()), field.getValue().asLong()));
          } catch (IOException | IllegalArgumentException e) {
            return Future.failedFuture(new IllegalStateException("the node at " + url + " answered counts this node"
                + " cannot read: " + e.getMessage()));
          }
          return Future.succeededFuture(counts);
        });
  }

  /** The partitions of an asked count; a 400 for one that is no events partition of a type. */
  private Set<TopicPartition> parse(String asked) {
    Set<TopicPartition> partitions = new HashSet<>();
    for (String name : asked.split(",")) {
      try {
        partitions.add(partitionOf(name.trim()));
      } catch (IllegalArgumentException e) {
        throw KfoldException.badRequest(PARTITIONS + " must list events partitions (topic-n), was '" + asked + "'");
      }
    }
    return partitions;
  }

  private TopicPartition partitionOf(String name) {
    int dash = name.lastIndexOf('-');
    if (dash < 1 || !typeByTopic.containsKey(name.substring(0, dash))) {
      throw new IllegalArgumentException("'" + name + "' is no events partition of a type");
    }
    TopicPartition partition = new TopicPartition(name.substring(0, dash), Integer.parseInt(name.substring(dash + 1)));
    if (partition.partition() < 0 || partition.partition() >= ownership.partitions(typeByTopic.get(partition.topic())).size()) {
      throw new IllegalArgumentException("'" + name + "' is no events partition of a type");
    }
    return partition;
  }

  private static void send(RoutingContext ctx, JsonNode body) {
    ctx.response().putHeader("content-type", "application/json").end(Buffer.buffer(Envelopes.toBytes(body)));
  }

  void close() {
    client.close();
  }
}
