package io.kfold.effects;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.config.NodeConfig;
import io.kfold.cluster.Forwarder;
import io.kfold.cluster.NodeDirectory;
import io.kfold.cluster.Ownership;
import io.kfold.command.EntityWriter;
import io.kfold.effects.ChangesLoop.Commit;
import io.kfold.effects.ChangesLoop.CommitBeforeStart;
import io.kfold.effects.ChangesLoop.Overloaded;
import io.kfold.effects.ChangesLoop.Resume;
import io.kfold.effects.EffectConfig.Delivery;
import io.kfold.effects.ParkingLot.Request;
import io.kfold.types.Envelopes;
import io.kfold.entity.KfoldException;
import io.kfold.log.Supervisor;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.VerticleBase;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.JsonObject;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.LongAdder;

/**
 * One side-effect worker: its own consumer group on the changes topics of its entity types, never
 * inside the fold. It puts together a {@link ChangesLoop} (the consumer, on a thread of its own under
 * the node's supervisor), an {@link EntityScheduler} (order per entity, parallel across entities),
 * an {@link OffsetTracker} (what may be committed), a {@link DeliveryEngine} (attempts, retries, the
 * breaker) and a {@link DeadLetterTopic} (dead letters and the parking lot every node follows). All
 * of them but the two loops run on this verticle's event loop.
 *
 * <p>At-least-once: an offset is committed once every change before it in its partition has been
 * delivered or dead-lettered. At-most-once: an effect starts only after its offset is committed, and
 * is tried once; a crash loses the effects that were running and those of lower offsets still
 * waiting behind other entities, never repeats one, and the partition's next reader counts them
 * from the metadata of the last commit.
 *
 * <p>A replay or skip asked on any node is a record in the dead-letter topic; the node whose worker
 * delivers the entity's changes partition carries it out, in order with the entity's changes, and
 * writes the outcome, which the node asked answers with.
 */
public final class EffectVerticle extends VerticleBase {

  private static final Logger LOG = LoggerFactory.getLogger(EffectVerticle.class);
  /** Changes held in memory, per in-flight entity, before the consumer pauses. */
  private static final int BUFFER_PER_KEY = 64;
  /** How long a replay or skip request waits for the node that delivers the entity to carry it out. */
  private static final long ANSWER_WAIT_MS = 30_000;

  /** A change to deliver, or a request to carry out, for one entity, under the lease of its changes partition. */
  private sealed interface Job permits Item, Resolution {
    Lease lease();

    EntityRef entity();
  }

  /** One change and where it was read. */
  private record Item(Lease lease, long offset, Change change) implements Job {
    @Override
    public EntityRef entity() {
      return EntityRef.of(change);
    }
  }

  private record Resolution(Lease lease, Request request) implements Job {
    @Override
    public EntityRef entity() {
      return request.entity();
    }
  }

  private final NodeConfig config;
  private final EffectConfig effect;
  private final EntityWriter writer;
  private final Ownership ownership;
  /** Where the target entities of reactions are folded, for the writes forwarded there. */
  private final NodeDirectory directory;
  private final Supervisor supervisor;
  private final EffectStats stats = new EffectStats();
  /** The application's own sinks, for a worker of kind sink. */
  private final PluggedSinks pluggedSinks;

  private EffectSink sink;
  private DeliveryEngine engine;
  private EntityScheduler<Job> scheduler;
  private final OffsetTracker offsets = new OffsetTracker();
  private DeadLetterTopic deadLetters;
  private ChangesLoop changes;
  private Supervisor.Running changesLoop;
  /** Partitions given to this worker whose dead letters are not read far enough yet. */
  private final Set<Lease> awaitingLot = new HashSet<>();
  /** Partitions this worker delivers. */
  private final Map<TopicPartition, Lease> delivering = new HashMap<>();
  private boolean overloaded;
  /** The version of each entity's last change started, to skip a change published twice; the oldest are forgotten. */
  private final Map<EntityRef, Long> lastStarted = new LinkedHashMap<>(16, 0.75f, true) {
    @Override
    protected boolean removeEldestEntry(Map.Entry<EntityRef, Long> eldest) {
      return size() > 100_000;
    }
  };
  /** The replay and skip requests this node asked for, by request id, waiting for their outcome. */
  private final Map<String, Promise<ObjectNode>> asked = new HashMap<>();

  public EffectVerticle(NodeConfig config, EffectConfig effect, EntityWriter writer, Ownership ownership,
                        NodeDirectory directory, Supervisor supervisor, PluggedSinks pluggedSinks) {
    this.directory = directory;
    this.pluggedSinks = pluggedSinks;
    this.config = config;
    this.effect = effect;
    this.writer = writer;
    this.ownership = ownership;
    this.supervisor = supervisor;
  }

  public String name() {
    return effect.name();
  }

  public EffectStats stats() {
    return stats;
  }

  @Override
  public Future<?> start() {
    sink = switch (effect.kind()) {
      case HTTP -> new HttpSink(vertx, (EffectConfig.HttpTarget) effect.target(), effect.timeoutMs(),
          effect.maxInFlightKeys());
      case EMAIL -> new EmailSink(vertx, (EffectConfig.EmailTarget) effect.target());
      case INDEX -> new IndexSink(vertx, (EffectConfig.IndexTarget) effect.target(), effect.timeoutMs());
      case COMMAND -> new CommandSink((EffectConfig.CommandTarget) effect.target(), writer,
          new Forwarder(vertx, config, ownership, directory));
      case SINK -> pluggedSinks.of(effect);
    };
    Timer timer = (delayMs, action) -> {
      long id = vertx.setTimer(delayMs, t -> action.run());
      return () -> vertx.cancelTimer(id);
    };
    engine = new DeliveryEngine(effect, sink, timer, () -> ThreadLocalRandom.current().nextDouble(), stats);
    scheduler = new EntityScheduler<>(effect.maxInFlightKeys(), effect.maxInFlightKeys() * BUFFER_PER_KEY);
    deadLetters = new DeadLetterTopic(vertx, context, config, effect.name(), supervisor, this::applied);
    stats.parkedEntities = () -> deadLetters.lot().entities();
    changes = new ChangesLoop(config, effect, context, stats, new ChangesListener());
    return deadLetters.start().map(v -> {
      String prefix = "kfold.effects." + effect.name();
      // Asked by this node's HTTP API only: on a clustered event bus another node's worker must not answer
      // for this one, and another JVM must not replay or skip without the admin role.
      vertx.eventBus().<JsonObject>localConsumer(prefix + ".parked", m -> m.reply(jsonObject(deadLetters.lot().toJson())));
      vertx.eventBus().<JsonObject>localConsumer(prefix + ".replay", m -> ask(m.body(), false)
          .onSuccess(r -> m.reply(jsonObject(r))).onFailure(e -> m.fail(status(e), e.getMessage())));
      vertx.eventBus().<JsonObject>localConsumer(prefix + ".skip", m -> ask(m.body(), true)
          .onSuccess(r -> m.reply(jsonObject(r))).onFailure(e -> m.fail(status(e), e.getMessage())));
      vertx.setPeriodic(30_000, id -> LOG.info("effect worker {}: {}", effect.name(), stats.toJson()));
      changesLoop = supervisor.start("effects." + effect.name(), changes);
      LOG.info("effect worker {} ({} {}) on {}", effect.name(), effect.kind(), effect.delivery(), effect.entities());
      return null;
    });
  }

  @Override
  public Future<?> stop() {
    return vertx.executeBlocking(() -> {
      if (changesLoop != null) {
        changesLoop.stop(Duration.ofSeconds(30));  // commits what is finished
      }
      return null;
    }).eventually(() -> deadLetters.stop()).eventually(() -> sink.close());
  }

  /** What the changes loop tells this worker, on its event loop. */
  private final class ChangesListener implements ChangesLoop.Listener {
    @Override
    public void assigned(Lease lease) {
      awaitingLot.add(lease);
      deadLetters.caughtUp().onSuccess(v -> {
        if (awaitingLot.remove(lease)) {
          delivering.put(lease.partition(), lease);
          takeOn(deadLetters.lot().pending(entity -> partitionOf(entity).equals(lease.partition())));
          changes.send(new Resume(lease));
        }
      });
    }

    @Override
    public void revoked(Collection<Lease> leases) {
      for (Lease lease : leases) {
        awaitingLot.remove(lease);
        delivering.remove(lease.partition(), lease);
        offsets.forget(lease);
      }
      scheduler.drop(job -> leases.contains(job.lease()));
      scheduled();
    }

    @Override
    public void received(ConsumerRecords<String, byte[]> records) {
      Map<Lease, Long> committable = new HashMap<>();
      for (ConsumerRecord<String, byte[]> record : records) {
        Lease lease = delivering.get(new TopicPartition(record.topic(), record.partition()));
        if (lease == null) {
          continue;  // taken away since it was polled
        }
        if (effect.delivery() == Delivery.AT_LEAST_ONCE) {
          offsets.received(lease, record.offset());
        }
        Change change = decode(record);
        if (change == null || !effect.events().isEmpty() && !effect.events().contains(change.eventType())) {
          if (effect.delivery() == Delivery.AT_LEAST_ONCE) {
            offsets.finished(lease, record.offset()).ifPresent(offset -> committable.put(lease, offset));
          }
          continue;
        }
        if (effect.delivery() == Delivery.AT_MOST_ONCE) {
          offsets.waiting(lease, record.offset());
        }
        scheduler.add(EntityRef.of(change), new Item(lease, record.offset(), change));
      }
      committable.forEach((lease, offset) -> changes.send(new Commit(lease, offset)));
      scheduled();
    }
  }

  private Change decode(ConsumerRecord<String, byte[]> record) {
    try {
      return Change.of(Envelopes.parse(record.value()));
    } catch (IOException | RuntimeException e) {
      LOG.warn("effect worker {}: skipping undecodable change at {}-{}@{}: {}", effect.name(), record.topic(),
          record.partition(), record.offset(), e.toString());
      return null;
    }
  }

  /** After the scheduler changed: pause or resume the consumer, and start what may start. */
  private void scheduled() {
    if (scheduler.overloaded() != overloaded) {
      overloaded = !overloaded;
      changes.send(new Overloaded(overloaded));
    }
    List<Item> items = new ArrayList<>();
    for (Job job : scheduler.startable()) {
      if (job instanceof Item item) {
        items.add(item);
      } else {
        resolve((Resolution) job);
      }
    }
    stats.inFlight = scheduler.inFlight();
    if (items.isEmpty()) {
      return;
    }
    if (effect.delivery() == Delivery.AT_LEAST_ONCE) {
      items.forEach(this::start);
      return;
    }
    Map<Lease, Long> below = new HashMap<>();
    items.forEach(item -> below.put(item.lease(), offsets.starting(item.lease(), item.offset())));
    Map<Lease, OffsetAndMetadata> commitFirst = new HashMap<>();
    below.forEach((lease, offset) -> commitFirst.put(lease, committable(lease, offset)));
    changes.send(new CommitBeforeStart(commitFirst, committed -> items.forEach(item -> {
      if (committed.contains(item.lease())) {
        start(item);
      } else {
        finished(item);  // its partition moved before the commit: its new owner runs it, not this one
      }
    })));
  }

  private void start(Item item) {
    EntityRef entity = item.entity();
    if (item.change().version() <= lastStarted.getOrDefault(entity, 0L)) {
      finished(item);  // a change seen already: changes may be published more than once
      return;
    }
    lastStarted.put(entity, item.change().version());
    if (deadLetters.lot().isParked(entity)) {
      record(item, ParkingLot.parked(effect.name(), item.change(), deadLetters.lot().head(entity)), stats.parked);
      return;
    }
    engine.deliver(item.change()).onSuccess(outcome -> {
      if (outcome.delivered()) {
        finished(item);
      } else {
        LOG.warn("effect worker {}: dead-lettering {} after {} attempts: {}", effect.name(), item.change().id(),
            outcome.attempts(), outcome.error());
        record(item, ParkingLot.deadLetter(effect.name(), item.change(), outcome.error(), outcome.attempts()),
            stats.deadLettered);
      }
    });
  }

  /** Writes the item's dead letter or parked record; only once the lot has it is the change done. */
  private void record(Item item, ObjectNode record, LongAdder counter) {
    appendUntilWritten(item.entity(), record).onSuccess(v -> {
      counter.increment();
      finished(item);
    });
  }

  private Future<Void> appendUntilWritten(EntityRef entity, ObjectNode record) {
    return deadLetters.append(entity, record).recover(e -> {
      LOG.error("effect worker {}: cannot write to the dead-letter topic for {}, retrying: {}", effect.name(), entity,
          e.toString());
      Promise<Void> retried = Promise.promise();
      vertx.setTimer(1000, id -> appendUntilWritten(entity, record).onComplete(retried));
      return retried.future();
    });
  }

  /**
   * The job is over: release its entity and, for a change read at-least-once, its offset; for one
   * read at-most-once, commit again that it no longer runs, so that a crash is not taken to have
   * left it undone.
   */
  private void finished(Job job) {
    scheduler.finished(job.entity());
    if (job instanceof Item item && effect.delivery() == Delivery.AT_LEAST_ONCE) {
      offsets.finished(item.lease(), item.offset()).ifPresent(offset -> changes.send(new Commit(item.lease(), offset)));
    } else if (job instanceof Item item) {
      offsets.ended(item.lease());
      offsets.committedBeforeStart(item.lease())
          .ifPresent(offset -> changes.send(new Commit(item.lease(), committable(item.lease(), offset))));
    }
    scheduled();
  }

  /** At-most-once: the offset, with what a crash would leave undone below it for the partition's next reader. */
  private OffsetAndMetadata committable(Lease lease, long offset) {
    return new OffsetAndMetadata(offset, offsets.unfinished(lease).metadata());
  }

  // ---- Replay and skip: asked on any node, carried out by the node that delivers the entity.

  /** What a record of the dead-letter topic meant for requests. */
  private void applied(ParkingLot.Applied applied) {
    if (applied instanceof ParkingLot.Requested requested) {
      takeOn(List.of(requested.request()));
    } else if (applied instanceof ParkingLot.Resolved resolved) {
      answer(resolved.request(), Future.succeededFuture(resolved.result()));
    } else if (applied instanceof ParkingLot.NotParked notParked) {
      answer(notParked.request(), Future.failedFuture(notParked(notParked.entity().toString())));
    }
  }

  /** Queues the requests whose entity this worker delivers, behind the entity's changes read so far. */
  private void takeOn(List<Request> requests) {
    for (Request request : requests) {
      Lease lease = delivering.get(partitionOf(request.entity()));
      if (lease != null) {
        scheduler.add(request.entity(), new Resolution(lease, request));
      }
    }
    scheduled();
  }

  /**
   * Replays the entity's parked changes in order (after dropping the one at the head for a skip),
   * stops at the first that fails again, and writes the outcome for the node that asked.
   */
  private void resolve(Resolution resolution) {
    Request request = resolution.request();
    List<ParkingLot.Entry> entries = deadLetters.lot().entries(request.entity());
    List<String> skipped = request.skip() && !entries.isEmpty() ? List.of(entries.get(0).id()) : List.of();
    List<String> replayed = new ArrayList<>();
    Promise<String> failure = Promise.promise();
    replayFrom(entries, skipped.size(), replayed, failure);
    failure.future()
        .compose(error -> appendUntilWritten(request.entity(),
            ParkingLot.resolved(effect.name(), request, skipped, replayed, error)))
        .onComplete(v -> {
          stats.skipped.add(skipped.size());
          finished(resolution);
        });
  }

  /** Delivers entries from {@code index} on, one after the other; completes with the first failure, or null. */
  private void replayFrom(List<ParkingLot.Entry> entries, int index, List<String> replayed, Promise<String> failure) {
    if (index == entries.size()) {
      failure.complete(null);
      return;
    }
    ParkingLot.Entry entry = entries.get(index);
    engine.replay(Change.of(entry.change()))
        .onSuccess(v -> {
          replayed.add(entry.id());
          replayFrom(entries, index + 1, replayed, failure);
        })
        .onFailure(e -> failure.complete("replaying " + entry.id() + " failed: " + e.getMessage()));
  }

  /**
   * Asks for a replay or skip: writes the request to the dead-letter topic and waits for its
   * outcome there. Without a type, the worker's only type, or the one type with this id parked.
   */
  private Future<ObjectNode> ask(JsonObject body, boolean skip) {
    String key = body.getString("key");
    String type = body.getString("type");
    Future<EntityRef> entity;
    if (type != null) {
      entity = effect.entities().contains(type) ? Future.succeededFuture(new EntityRef(type, key))
          : Future.failedFuture(KfoldException.notFound("worker " + effect.name() + " does not react to " + type));
    } else if (effect.entities().size() == 1) {
      entity = Future.succeededFuture(new EntityRef(effect.entities().get(0), key));
    } else {
      entity = deadLetters.caughtUp().compose(v -> {
        List<EntityRef> parked = deadLetters.lot().withKey(key);
        if (parked.size() > 1) {
          return Future.failedFuture(new KfoldException(409, "Ambiguous", "entities of several types with id '" + key
              + "' are parked: " + parked + "; name the type: /v1/_effects/" + effect.name() + "/parked/{type}/" + key
              + "/...", Map.of()));
        }
        return parked.isEmpty() ? Future.failedFuture(notParked(key)) : Future.succeededFuture(parked.get(0));
      });
    }
    return entity.compose(ref -> {
      Request request = new Request(UUID.randomUUID().toString(), ref, skip);
      Promise<ObjectNode> answer = Promise.promise();
      asked.put(request.id(), answer);
      long timeout = vertx.setTimer(ANSWER_WAIT_MS, id -> answer(request.id(), Future.failedFuture(new KfoldException(504,
          "Gateway Timeout", "the worker delivering " + ref + " did not carry out the request within "
          + ANSWER_WAIT_MS + " ms; it may still do so", Map.of()))));
      deadLetters.append(ref, ParkingLot.requested(effect.name(), request))
          .onFailure(e -> answer(request.id(), Future.failedFuture(e)));
      return answer.future().onComplete(done -> vertx.cancelTimer(timeout));
    });
  }

  private void answer(String request, Future<ObjectNode> outcome) {
    Promise<ObjectNode> waiting = asked.remove(request);
    if (waiting != null) {
      outcome.onComplete(waiting);
    }
  }

  private KfoldException notParked(String entity) {
    return KfoldException.notFound("worker " + effect.name() + " has no parked events for '" + entity + "'");
  }

  /** The changes partition of an entity: the number of its events partition, where the fold publishes its changes. */
  private TopicPartition partitionOf(EntityRef entity) {
    return new TopicPartition(config.changesTopic(entity.type()), ownership.partition(entity.type(), entity.key()).partition());
  }

  private static int status(Throwable e) {
    return e instanceof KfoldException k ? k.status() : 500;
  }

  private static JsonObject jsonObject(JsonNode node) {
    return new JsonObject(Buffer.buffer(Envelopes.toBytes(node)));
  }
}
