package io.kfold.command;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.KfoldConfig;
import io.kfold.entity.Envelope;
import io.kfold.entity.Envelopes;
import io.kfold.entity.KfoldException;
import io.kfold.fold.FoldWatch;
import io.kfold.fold.FoldWatch.Verdict;
import io.kfold.store.EntityStore;
import io.kfold.store.StoredEntity;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.kafka.client.producer.KafkaWriteStream;
import org.apache.kafka.clients.producer.ProducerRecord;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;
import java.util.UUID;

/**
 * Appends events to an entity: one append at a time per entity on this node, checked against the
 * entity's version, answered once the fold has accepted the events. The fold's version check
 * decides any race with a writer elsewhere; a caller whose events lost gets a conflict.
 */
public final class EventAppender {

  /** An event to append, before it has an envelope. */
  public record NewEvent(String type, JsonNode payload) {}

  /** The appended events and the entity's version after them. */
  public record Appended(String key, long version, List<Envelope> events) {}

  private final Vertx vertx;
  private final KfoldConfig config;
  private final EntityStore store;
  private final FoldWatch watch;
  private final KafkaWriteStream<String, byte[]> producer;
  private final EntityQueue queue = new EntityQueue();

  public EventAppender(Vertx vertx, KfoldConfig config, EntityStore store, FoldWatch watch,
                       KafkaWriteStream<String, byte[]> producer) {
    this.vertx = vertx;
    this.config = config;
    this.store = store;
    this.watch = watch;
    this.producer = producer;
  }

  /**
   * @param expectedVersion the version the caller saw; empty to append whatever the version
   * @param correlationId   carried in every event's meta; null to use the command id
   */
  public Future<Appended> append(String type, String key, OptionalLong expectedVersion, List<NewEvent> events,
                                 String correlationId) {
    return queue.run(type + "/" + key, () -> currentVersion(type, key).compose(current -> {
      if (expectedVersion.isPresent() && expectedVersion.getAsLong() != current) {
        return Future.failedFuture(KfoldException.versionConflict(type + " '" + key + "' is at version " + current
            + ", not " + expectedVersion.getAsLong(), current));
      }
      List<Envelope> envelopes = envelopes(type, key, current, events, correlationId);
      // A command wins or loses whole (see Fold), so the verdict on its last event is the verdict on all.
      String lastId = envelopes.get(envelopes.size() - 1).id();
      Future<Verdict> verdict = watch.awaitVerdict(lastId, config.append().timeoutMs());
      return produce(envelopes)
          .onFailure(e -> watch.forget(lastId))
          .compose(v -> verdict)
          .compose(outcome -> outcome == Verdict.APPLIED
              ? Future.succeededFuture(new Appended(key, current + envelopes.size(), envelopes))
              : currentVersion(type, key).compose(now -> Future.failedFuture(KfoldException.versionConflict(
                  type + " '" + key + "' changed concurrently: another writer took version " + (current + 1)
                      + "; it is now at version " + now, now))));
    }));
  }

  private Future<Long> currentVersion(String type, String key) {
    return vertx.executeBlocking(() -> {
      StoredEntity stored = store.get(type, key);
      return stored == null ? 0L : stored.version();
    }, false);
  }

  private static List<Envelope> envelopes(String type, String key, long current, List<NewEvent> events,
                                          String correlationId) {
    String commandId = UUID.randomUUID().toString();
    String time = Instant.now().toString();
    List<Envelope> envelopes = new ArrayList<>(events.size());
    for (int i = 0; i < events.size(); i++) {
      ObjectNode meta = JsonNodeFactory.instance.objectNode();
      meta.put("commandId", commandId);
      meta.put("correlationId", correlationId == null ? commandId : correlationId);
      meta.put("index", i);
      envelopes.add(new Envelope(UUID.randomUUID().toString(), events.get(i).type(), type, key, current + 1 + i, time,
          events.get(i).payload(), meta));
    }
    return envelopes;
  }

  private Future<Void> produce(List<Envelope> envelopes) {
    List<Future<?>> sends = new ArrayList<>(envelopes.size());
    for (Envelope envelope : envelopes) {
      sends.add(producer.send(new ProducerRecord<>(config.eventsTopic(envelope.entity()), envelope.key(),
          Envelopes.toBytes(envelope))));
    }
    return Future.all(sends).<Void>mapEmpty().recover(e -> Future.failedFuture(KfoldException.unavailable(
        "could not append to Kafka: " + e.getMessage())));
  }
}
