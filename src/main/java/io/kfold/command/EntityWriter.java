package io.kfold.command;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.config.NodeConfig;
import io.kfold.cluster.Ownership;
import io.kfold.entity.Command;
import io.kfold.entity.EntityType;
import io.kfold.types.EntityTypes;
import io.kfold.entity.Envelope;
import io.kfold.types.Envelopes;
import io.kfold.entity.KfoldException;
import io.kfold.entity.NewEvent;
import io.kfold.fold.FoldWatch;
import io.kfold.fold.FoldWatch.Verdict;
import io.kfold.query.Position;
import io.kfold.store.EntityStore;
import io.kfold.store.IdempotentWrite;
import io.kfold.store.StoredEntity;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.kafka.client.producer.KafkaWriteStream;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

/**
 * The write side: commands and event appends. Writes of one entity run one at a time on this node;
 * each decides against the entity's current state and version, appends its events with the next
 * versions (idempotent producer, acks=all), and answers once the fold has given its verdict. The
 * fold's version check decides any race with a writer elsewhere: a write whose events lost gets a
 * conflict, or, when the caller did not ask for a version, is decided again on the new state.
 */
public final class EntityWriter {

  /**
   * What a write appended, the entity's version after it, and the position of its last event (of the
   * entity's last event when it appended none; null when the entity has none).
   */
  public record Written(String key, long version, List<Envelope> events, Position position) {
    /** The answer to a write, the same over HTTP and the event bus: {@code {key, version, events, position}}. */
    public ObjectNode toJson() {
      ObjectNode body = JsonNodeFactory.instance.objectNode();
      body.put("key", key);
      body.put("version", version);
      ArrayNode list = body.putArray("events");
      events.forEach(e -> list.add(Envelopes.toJson(e)));
      if (position == null) {
        body.putNull("position");
      } else {
        body.put("position", position.token());
      }
      return body;
    }
  }

  /**
   * How a write is made.
   *
   * @param expectedVersion the version the caller saw ({@code If-Match}); empty for any
   * @param idempotencyKey  a retry with the same key answers the first write's result; null for none
   * @param correlationId   carried in the events' meta; null to use the command id
   * @param principal       who asks, recorded in the events' meta; null when no caller is known (no
   *                        authentication, a write of the node's own)
   */
  public record Options(OptionalLong expectedVersion, String idempotencyKey, String correlationId, String principal) {
    public static final Options NONE = new Options(OptionalLong.empty(), null, null, null);

    public Options(OptionalLong expectedVersion, String idempotencyKey, String correlationId) {
      this(expectedVersion, idempotencyKey, correlationId, null);
    }
    private static final Pattern IDEMPOTENCY_KEY = Pattern.compile("[\\x21-\\x7e]{1,255}");

    /**
     * The HTTP headers that carry these options to the node that folds the entity (the principal
     * travels with the caller's own credentials, not here).
     */
    public Map<String, String> headers() {
      Map<String, String> headers = new LinkedHashMap<>();
      expectedVersion.ifPresent(version -> headers.put("If-Match", "\"" + version + "\""));
      if (idempotencyKey != null) {
        headers.put("Idempotency-Key", idempotencyKey);
      }
      if (correlationId != null) {
        headers.put("X-Correlation-Id", correlationId);
      }
      return headers;
    }

    /**
     * A caller's idempotency key, checked: 1 to 255 visible ASCII characters, so that it can
     * travel as a header to the node that folds the entity. Null stays null.
     */
    public static String checkedIdempotencyKey(String idempotencyKey) {
      if (idempotencyKey != null && !IDEMPOTENCY_KEY.matcher(idempotencyKey).matches()) {
        throw KfoldException.badRequest("Idempotency-Key must be 1 to 255 visible ASCII characters");
      }
      return idempotencyKey;
    }
  }

  /** Decides a write's events from the entity's current state and version. */
  private interface Decision {
    List<NewEvent> events(JsonNode state, long version);
  }

  /** Decisions made anew when a write without an expected version loses a race. */
  private static final int RETRIES = 3;

  private final Vertx vertx;
  private final NodeConfig config;
  private final EntityTypes types;
  private final EntityStore store;
  private final FoldWatch watch;
  private final KafkaWriteStream<String, byte[]> producer;
  private final Ownership ownership;
  private final EntityQueue queue = new EntityQueue();
  private volatile Latency latency = (type, outcome, nanos) -> { };

  /** Hears how long each write took, from reaching the writer to the fold's verdict, and how it ended. */
  public interface Latency {
    /** @param outcome applied, rejected (the command or the request refused), conflict (version) or failed */
    void record(String type, String outcome, long nanos);
  }

  public void measureWith(Latency latency) {
    this.latency = latency;
  }

  public EntityWriter(Vertx vertx, NodeConfig config, EntityTypes types, EntityStore store, FoldWatch watch,
                      KafkaWriteStream<String, byte[]> producer, Ownership ownership) {
    this.vertx = vertx;
    this.config = config;
    this.types = types;
    this.store = store;
    this.watch = watch;
    this.producer = producer;
    this.ownership = ownership;
  }

  /** Runs a command through its type's {@code decide} and appends the events it causes. */
  public Future<Written> handle(String type, String key, Command command, Options options) {
    EntityType entityType = types.get(type);
    return write(entityType, key, options, (state, version) -> entityType.decide(state, version, command));
  }

  /** Appends events as they are. */
  public Future<Written> append(String type, String key, List<NewEvent> events, Options options) {
    return write(types.get(type), key, options, (state, version) -> events);
  }

  private Future<Written> write(EntityType type, String key, Options options, Decision decision) {
    long start = System.nanoTime();
    return written(type, key, options, decision)
        .onComplete(done -> latency.record(type.name(), outcome(done.cause()), System.nanoTime() - start));
  }

  private static String outcome(Throwable failure) {
    if (failure == null) {
      return "applied";
    }
    int status = failure instanceof KfoldException e ? e.status() : 500;
    return status == 409 || status == 412 ? "conflict" : status >= 400 && status < 500 ? "rejected" : "failed";
  }

  private Future<Written> written(EntityType type, String key, Options options, Decision decision) {
    if (!ownership.owns(type.name(), key)) {
      // Deciding against a state this node does not fold would decide against a stale one, and the
      // verdict would never come. The HTTP and event-bus APIs send such writes to the owner first;
      // a write that still lands here (an effect's command, a rebalance meanwhile) is refused.
      return Future.failedFuture(KfoldException.unavailable("this node does not fold " + type.name() + " '" + key
          + "' (partition " + ownership.partition(type.name(), key) + "): send it to the node that does, or retry"
          + " once this node is ready"));
    }
    TopicPartition partition = ownership.partition(type.name(), key);
    long deadline = System.currentTimeMillis() + config.writes().timeoutMs();
    // Decided once this node has folded everything the partition held when the group gave it to it:
    // else it would decide against states older than what the previous owner acknowledged (refuse a
    // comment on an order that exists, or answer 409 to a caller whose If-Match is right).
    return queue.run(type.name() + "/" + key, () -> ownership.awaitCurrent(vertx, partition, deadline,
            "this node is not ready to write " + type.name() + " '" + key + "'")
        .compose(v -> attempt(type, key, options, decision, RETRIES)));
  }

  private Future<Written> attempt(EntityType type, String key, Options options, Decision decision, int retries) {
    return vertx.executeBlocking(() -> decide(type, key, options, decision), false).compose(decided -> {
      if (decided.previous() != null || decided.events().isEmpty()) {
        return Future.succeededFuture(decided.previous() != null ? decided.previous()
            : new Written(key, decided.version(), List.of(), position(type.name(), key, decided.sourceOffset())));
      }
      List<Envelope> envelopes = decided.events();
      // The fold applies a command's later events only right after its earlier ones, so the verdicts
      // on its first and last events tell whether it was applied whole, not at all, or (when an
      // outside producer's event slipped in between) in part.
      String firstId = envelopes.get(0).id();
      String lastId = envelopes.get(envelopes.size() - 1).id();
      TopicPartition partition = ownership.partition(type.name(), key);
      Future<Verdict> first = envelopes.size() > 1 ? watch.awaitVerdict(firstId, partition, config.writes().timeoutMs())
          : null;
      Future<Verdict> last = watch.awaitVerdict(lastId, partition, config.writes().timeoutMs());
      Future<Long> lastOffset = produce(envelopes);
      return lastOffset
          .onFailure(e -> {
            watch.forget(firstId);
            watch.forget(lastId);
          })
          .compose(v -> first == null ? last : Future.all(first, last).map(all -> verdict(type, key, all.resultAt(0),
              all.resultAt(1))))
          .compose(outcome -> {
            if (outcome == Verdict.APPLIED) {
              return Future.succeededFuture(new Written(key, envelopes.get(envelopes.size() - 1).version(), envelopes,
                  position(type.name(), key, lastOffset.result())));
            }
            if (outcome == Verdict.DEAD_LETTERED) {
              return Future.failedFuture(new KfoldException(500, "Event not applied", type.name() + " '" + key
                  + "': the type's apply failed on an event of the write, which was dead-lettered", Map.of()));
            }
            return lost(type, key, options, decision, retries, decided.version());
          });
    });
  }

  /** The verdict on a write of several events, from those on its first and last. */
  private static Verdict verdict(EntityType type, String key, Verdict first, Verdict last) {
    if (first == Verdict.APPLIED && last != Verdict.APPLIED) {
      throw new KfoldException(500, "Partial write", type.name() + " '" + key + "': another writer's event came between"
          + " the events of this write, which was applied only in part; read the entity before writing again", Map.of());
    }
    return first == Verdict.APPLIED ? last : first == Verdict.DEAD_LETTERED ? first : last;
  }

  /** The fold accepted another writer's events at our versions. */
  private Future<Written> lost(EntityType type, String key, Options options, Decision decision, int retries,
                               long decidedAt) {
    if (options.expectedVersion().isEmpty() && retries > 0) {
      return attempt(type, key, options, decision, retries - 1);
    }
    return vertx.executeBlocking(() -> {
      Written previous = previousWrite(type.name(), key, options.idempotencyKey());
      if (previous != null) {
        return previous;  // an earlier attempt with the same key won the race
      }
      StoredEntity now = store.get(type.name(), key);
      long current = now == null ? 0 : now.version();
      throw KfoldException.versionConflict(type.name() + " '" + key + "' was changed by another writer after version "
          + decidedAt + "; it is now at version " + current, current);
    }, false);
  }

  /** The position of an event of the entity at {@code offset} in its events partition; null for none (-1). */
  private Position position(String type, String key, long offset) {
    return offset < 0 ? null
        : new Position(config.eventsTopic(type), ownership.partition(type, key).partition(), offset);
  }

  /** @param sourceOffset the offset of the entity's last event when decided; -1 when it had none */
  private record Decided(long version, long sourceOffset, List<Envelope> events, Written previous) {}

  /** On a worker thread: the store read and the type's decision, which is user code. */
  private Decided decide(EntityType type, String key, Options options, Decision decision) {
    Written previous = previousWrite(type.name(), key, options.idempotencyKey());
    if (previous != null) {
      return new Decided(previous.version(), -1, List.of(), previous);
    }
    StoredEntity stored = store.get(type.name(), key);
    long version = stored == null ? 0 : stored.version();
    if (options.expectedVersion().isPresent() && options.expectedVersion().getAsLong() != version) {
      throw KfoldException.versionConflict(type.name() + " '" + key + "' is at version " + version + ", not "
          + options.expectedVersion().getAsLong(), version);
    }
    JsonNode state = stored == null ? type.initialState() : parse(stored.state());
    List<NewEvent> events = decision.events(state, version);
    if (events.size() > config.writes().maxEvents()) {
      throw KfoldException.badRequest("a write may append at most " + config.writes().maxEvents() + " events");
    }
    return new Decided(version, stored == null ? -1 : stored.sourceOffset(),
        envelopes(type.name(), key, version, events, options), null);
  }

  /** The answer of an earlier write with this idempotency key, while the key is remembered. */
  private Written previousWrite(String type, String key, String idempotencyKey) {
    if (idempotencyKey == null) {
      return null;
    }
    IdempotentWrite earlier = store.idempotentWrite(type, key, idempotencyKey);
    if (earlier == null || earlier.recordedAt() < System.currentTimeMillis() - config.writes().idempotencyWindowMs()) {
      return null;
    }
    List<Envelope> events = new ArrayList<>();
    for (byte[] event : store.history(type, key, earlier.firstVersion(),
        (int) (earlier.lastVersion() - earlier.firstVersion() + 1))) {
      events.add(Envelopes.fromJson(parse(event)));
    }
    long offset = earlier.lastOffset();
    if (offset < 0) {
      // Recorded before offsets were kept: the entity's last event is at or after the write's.
      StoredEntity stored = store.get(type, key);
      offset = stored == null ? -1 : stored.sourceOffset();
    }
    return new Written(key, earlier.lastVersion(), events, position(type, key, offset));
  }

  private static List<Envelope> envelopes(String type, String key, long current, List<NewEvent> events,
                                          Options options) {
    String commandId = UUID.randomUUID().toString();
    String time = Instant.now().toString();
    List<Envelope> envelopes = new ArrayList<>(events.size());
    for (int i = 0; i < events.size(); i++) {
      ObjectNode meta = JsonNodeFactory.instance.objectNode();
      meta.put("commandId", commandId);
      meta.put("correlationId", options.correlationId() == null ? commandId : options.correlationId());
      meta.put("index", i);
      if (options.idempotencyKey() != null) {
        meta.put("idempotencyKey", options.idempotencyKey());
      }
      if (options.principal() != null) {
        meta.put("principal", options.principal());
      }
      envelopes.add(new Envelope(UUID.randomUUID().toString(), events.get(i).type(), type, key, current + 1 + i, time,
          events.get(i).payload(), meta));
    }
    return envelopes;
  }

  /**
   * Appends the events; completes with the offset of the last one. While the broker is gone the
   * producer holds the records and retries (for its delivery timeout, minutes): the caller gets a
   * 504 after writes.timeoutMs, as when the fold gives no verdict, instead of waiting as long. The records may still be appended once
   * the broker is back; a retry with the same idempotency key then answers their write, and a retry
   * decided meanwhile loses to them in the fold's version check.
   */
  private Future<Long> produce(List<Envelope> envelopes) {
    List<Future<RecordMetadata>> sends = new ArrayList<>(envelopes.size());
    for (Envelope envelope : envelopes) {
      sends.add(producer.send(new ProducerRecord<>(config.eventsTopic(envelope.entity()), envelope.key(),
          Envelopes.toBytes(envelope))));
    }
    return Future.all(sends).map(all -> sends.get(sends.size() - 1).result().offset())
        .timeout(config.writes().timeoutMs(), TimeUnit.MILLISECONDS)
        .recover(e -> Future.failedFuture(e instanceof java.util.concurrent.TimeoutException
            ? KfoldException.timeout("Kafka did not acknowledge the write's events within " + config.writes().timeoutMs()
                + " ms (is the broker reachable?); they may still be appended: retry with the same Idempotency-Key")
            : KfoldException.unavailable("could not append to Kafka: " + e.getMessage())));
  }

  private static JsonNode parse(byte[] json) {
    try {
      return Envelopes.parse(json);
    } catch (IOException e) {
      throw new UncheckedIOException("stored JSON is unreadable", e);
    }
  }
}
