package io.kfold.effects;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.KfoldConfig;
import io.kfold.command.EntityWriter;
import io.kfold.effects.EffectConfig.Delivery;
import io.kfold.effects.EffectSink.PermanentFailure;
import io.kfold.entity.Envelopes;
import io.kfold.entity.KfoldException;
import io.kfold.log.KafkaClients;
import io.kfold.log.Supervisor;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.VerticleBase;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.MessageConsumer;
import io.vertx.core.json.JsonObject;
import io.vertx.kafka.client.producer.KafkaWriteStream;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;

/**
 * One side-effect worker: its own consumer group on the changes topics of its entity types, never
 * inside the fold. The consumer polls on a thread of its own and hands each poll to this verticle's
 * event loop, which runs the effects: one at a time per entity, in order, up to
 * {@code maxInFlightKeys} entities at once, with retries, a circuit breaker, and dead letters that
 * park the entity's later events.
 *
 * <p>At-least-once: an offset is committed once every change before it in its partition has been
 * delivered or dead-lettered. At-most-once: an effect starts only after its offset is committed, and
 * is tried once; a crash loses the effects that were running and those of lower offsets still
 * waiting behind other entities, never repeats one.
 */
public final class EffectVerticle extends VerticleBase {

  private static final Logger LOG = LoggerFactory.getLogger(EffectVerticle.class);
  /** Changes held in memory, per in-flight key, before the consumer pauses. */
  private static final int BUFFER_PER_KEY = 64;

  private final KfoldConfig config;
  private final EffectConfig effect;
  private final EntityWriter writer;
  private final EffectStats stats = new EffectStats();

  private EffectSink sink;
  private KafkaConsumer<String, byte[]> consumer;
  private KafkaWriteStream<String, byte[]> deadLetters;
  private Thread thread;
  private volatile boolean running = true;
  private volatile boolean overloaded;
  /** Per partition, the offset that can be committed; written on the event loop, committed by the consumer thread. */
  private final Map<TopicPartition, Long> committable = new ConcurrentHashMap<>();
  /** At-most-once: effects that start once the consumer thread has committed past them. */
  private final java.util.Queue<StartRequest> startRequests = new java.util.concurrent.ConcurrentLinkedQueue<>();

  /** Effects to start once their offsets are committed; {@code start} gets the partitions that were. */
  private record StartRequest(Map<TopicPartition, Long> offsets, java.util.function.Consumer<Set<TopicPartition>> start) {}

  /** At-most-once: the highest offset committed per partition. Consumer thread only. */
  private final Map<TopicPartition, Long> committedBeforeStart = new HashMap<>();

  // Event-loop state.
  private Context context;
  private final Map<EntityRef, ArrayDeque<Item>> queues = new HashMap<>();
  private final ArrayDeque<EntityRef> ready = new ArrayDeque<>();
  private final Set<EntityRef> busy = new HashSet<>();
  private final Map<TopicPartition, TreeSet<Long>> unfinished = new HashMap<>();
  private final Map<TopicPartition, Long> received = new HashMap<>();
  /** The version of each entity's last change started, to skip a change published twice; the oldest are forgotten. */
  private final Map<EntityRef, Long> lastStarted = new java.util.LinkedHashMap<>(16, 0.75f, true) {
    @Override
    protected boolean removeEldestEntry(Map.Entry<EntityRef, Long> eldest) {
      return size() > 100_000;
    }
  };
  private int buffered;
  private ParkingLot parking = new ParkingLot();
  private Breaker breaker;
  private final List<MessageConsumer<?>> admin = new ArrayList<>();

  /** One change to deliver, and where it came from. */
  private record Item(TopicPartition partition, long offset, Change change) {
    EntityRef key() {
      return EntityRef.of(change);
    }
  }

  private final Supervisor supervisor;

  public EffectVerticle(KfoldConfig config, EffectConfig effect, EntityWriter writer, Supervisor supervisor) {
    this.config = config;
    this.supervisor = supervisor;
    this.effect = effect;
    this.writer = writer;
  }

  public String name() {
    return effect.name();
  }

  public EffectStats stats() {
    return stats;
  }

  @Override
  public Future<?> start() {
    context = vertx.getOrCreateContext();
    breaker = new Breaker();
    sink = switch (effect.kind()) {
      case HTTP -> new HttpSink(vertx, (EffectConfig.HttpTarget) effect.target(), effect.timeoutMs(),
          effect.maxInFlightKeys());
      case EMAIL -> new EmailSink(vertx, (EffectConfig.EmailTarget) effect.target());
      case INDEX -> new IndexSink(vertx, (EffectConfig.IndexTarget) effect.target(), effect.timeoutMs());
      case COMMAND -> new CommandSink((EffectConfig.CommandTarget) effect.target(), writer);
    };
    String bootstrap = config.kafka().bootstrap();
    return vertx.executeBlocking(() -> {
      deadLetters = KafkaWriteStream.create(vertx, KafkaClients.producer(bootstrap, config.effectGroup(effect.name()) + "-dlq"),
          new StringSerializer(), new ByteArraySerializer());
      ParkingLot lot = DeadLetterTopic.read(bootstrap, config.effectDeadLetterTopic(effect.name()));
      consumer = new KafkaConsumer<>(consumerConfig(bootstrap), new StringDeserializer(), new ByteArrayDeserializer());
      return lot;
    }).compose(lot -> {
      parking = lot;
      String prefix = "kfold.effects." + effect.name();
      admin.add(vertx.eventBus().<JsonObject>consumer(prefix + ".parked", m -> m.reply(jsonObject(parking.toJson()))));
      admin.add(vertx.eventBus().<JsonObject>consumer(prefix + ".replay", m -> resolve(m.body(), false)
          .onSuccess(r -> m.reply(jsonObject(r))).onFailure(e -> m.fail(status(e), e.getMessage()))));
      admin.add(vertx.eventBus().<JsonObject>consumer(prefix + ".skip", m -> resolve(m.body(), true)
          .onSuccess(r -> m.reply(jsonObject(r))).onFailure(e -> m.fail(status(e), e.getMessage()))));
      vertx.setPeriodic(30_000, id -> LOG.info("effect worker {}: {}", effect.name(), stats.toJson()));
      thread = new Thread(this::poll, "kfold-effect-" + config.effectGroup(effect.name()));
      thread.start();
      LOG.info("effect worker {} ({} {}) on {}; {} parked", effect.name(), effect.kind(), effect.delivery(),
          effect.entities(), parking.size());
      return Future.succeededFuture();
    });
  }

  @Override
  public Future<?> stop() {
    running = false;
    if (consumer != null) {
      consumer.wakeup();
    }
    return vertx.executeBlocking(() -> {
      if (thread != null) {
        thread.join(30_000);
      }
      return null;
    }).eventually(() -> sink.close()).eventually(() -> deadLetters == null ? Future.succeededFuture() : deadLetters.close());
  }

  private Map<String, Object> consumerConfig(String bootstrap) {
    Map<String, Object> conf = new HashMap<>();
    conf.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    conf.put(ConsumerConfig.GROUP_ID_CONFIG, config.effectGroup(effect.name()));
    conf.put(ConsumerConfig.CLIENT_ID_CONFIG, config.effectGroup(effect.name()) + "-consumer");
    conf.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    conf.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    conf.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 500);
    if (!config.kafka().groupInstanceId().isBlank()) {
      // Static membership, as for the fold: a restarted node takes its partitions back at once.
      conf.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, config.kafka().groupInstanceId() + "-" + effect.name());
    }
    return conf;
  }

  // ---- The consumer's thread: poll, pause, commit. Nothing else touches the consumer.

  private void poll() {
    List<String> topics = effect.entities().stream().map(config::changesTopic).toList();
    try {
      consumer.subscribe(topics, new Rebalance());
      while (running) {
        commitBeforeStart();
        boolean paused = !consumer.paused().isEmpty();
        if (overloaded && !paused) {
          consumer.pause(consumer.assignment());
        } else if (!overloaded && paused) {
          consumer.resume(consumer.paused());
        }
        commit(false);
        ConsumerRecords<String, byte[]> records;
        try {
          records = consumer.poll(Duration.ofMillis(100));
        } catch (WakeupException e) {
          continue;  // woken up to commit for at-most-once effects waiting to start, or to stop
        }
        Set<TopicPartition> assignment = consumer.assignment();
        stats.partitions = assignment.size();
        stats.lag = assignment.stream().mapToLong(p -> consumer.currentLag(p).orElse(0)).sum();
        if (records.isEmpty()) {
          continue;
        }
        context.runOnContext(v -> accept(records));
      }
    } catch (RuntimeException e) {
      LOG.error("effect worker {} stopped polling: {}", effect.name(), e.toString(), e);
    } finally {
      try {
        commit(true);
      } catch (RuntimeException e) {
        LOG.warn("effect worker {}: last commit failed: {}", effect.name(), e.toString());
      }
      consumer.close(Duration.ofSeconds(10));
    }
  }

  /** At-most-once: commits the offsets of effects about to start, then lets them start. */
  private void commitBeforeStart() {
    for (StartRequest request; (request = startRequests.poll()) != null; ) {
      StartRequest started = request;
      Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
      request.offsets().forEach((partition, offset) -> {
        if (consumer.assignment().contains(partition)) {
          // Never lower: an effect of a lower offset may start after a higher one has.
          long highest = committedBeforeStart.merge(partition, offset, Math::max);
          offsets.put(partition, new OffsetAndMetadata(highest));
        }
      });
      try {
        commitSync(offsets);
        Set<TopicPartition> committed = Set.copyOf(offsets.keySet());
        context.runOnContext(v -> started.start().accept(committed));
      } catch (RuntimeException e) {
        LOG.warn("effect worker {}: commit before starting effects failed; they wait for the next try: {}",
            effect.name(), e.toString());
        startRequests.add(started);
        return;
      }
    }
  }

  /** A wakeup meant for poll may hit a commit instead: the commit is then simply made again. */
  private void commitSync(Map<TopicPartition, OffsetAndMetadata> offsets) {
    while (true) {
      try {
        consumer.commitSync(offsets);
        return;
      } catch (WakeupException e) {
        // the wakeup is used up: the next try goes through
      }
    }
  }

  /** Commits what the event loop marked committable, for the partitions this consumer still has. */
  private void commit(boolean sync) {
    if (committable.isEmpty()) {
      return;
    }
    Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
    Set<TopicPartition> assignment = consumer.assignment();
    for (Map.Entry<TopicPartition, Long> entry : Map.copyOf(committable).entrySet()) {
      committable.remove(entry.getKey(), entry.getValue());  // a newer offset written meanwhile stays
      if (assignment.contains(entry.getKey())) {
        offsets.put(entry.getKey(), new OffsetAndMetadata(entry.getValue()));
      }
    }
    if (offsets.isEmpty()) {
      return;
    }
    if (sync) {
      commitSync(offsets);
    } else {
      consumer.commitAsync(offsets, (done, error) -> {
        if (error != null) {
          LOG.debug("effect worker {}: commit failed, a later one will cover it: {}", effect.name(), error.toString());
        }
      });
    }
  }

  private final class Rebalance implements ConsumerRebalanceListener {
    @Override
    public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
      commit(true);
      partitions.forEach(committedBeforeStart::remove);
      context.runOnContext(v -> forget(partitions));
    }

    @Override
    public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
      LOG.info("effect worker {} reacting to {}", effect.name(), partitions);
    }
  }

  // ---- The event loop: order per key, parallelism across keys, retries, dead letters.

  private void accept(ConsumerRecords<String, byte[]> records) {
    for (ConsumerRecord<String, byte[]> record : records) {
      TopicPartition partition = new TopicPartition(record.topic(), record.partition());
      if (effect.delivery() == Delivery.AT_LEAST_ONCE) {
        unfinished.computeIfAbsent(partition, p -> new TreeSet<>()).add(record.offset());
        received.put(partition, record.offset() + 1);
      }
      Change change;
      try {
        change = Change.of(Envelopes.parse(record.value()));
      } catch (IOException | RuntimeException e) {
        LOG.warn("effect worker {}: skipping undecodable change at {}@{}: {}", effect.name(), partition, record.offset(),
            e.toString());
        finished(partition, record.offset());
        continue;
      }
      if (!effect.events().isEmpty() && !effect.events().contains(change.eventType())) {
        finished(partition, record.offset());
        continue;
      }
      Item item = new Item(partition, record.offset(), change);
      ArrayDeque<Item> queue = queues.computeIfAbsent(item.key(), k -> new ArrayDeque<>());
      queue.add(item);
      buffered++;
      if (queue.size() == 1 && !busy.contains(item.key())) {
        ready.add(item.key());
      }
    }
    overloaded = buffered > effect.maxInFlightKeys() * BUFFER_PER_KEY;
    dispatch();
  }

  /**
   * Starts the head item of ready keys while fewer than maxInFlightKeys keys are busy. At-most-once
   * effects start only once their offsets are committed: a crash then loses them, never repeats them.
   */
  private void dispatch() {
    List<Item> starting = new ArrayList<>();
    while (!ready.isEmpty() && busy.size() < effect.maxInFlightKeys()) {
      EntityRef key = ready.poll();
      ArrayDeque<Item> queue = queues.get(key);
      if (queue == null || queue.isEmpty()) {
        continue;
      }
      busy.add(key);
      starting.add(queue.peek());
    }
    stats.inFlight = busy.size();
    if (starting.isEmpty()) {
      return;
    }
    if (effect.delivery() == Delivery.AT_LEAST_ONCE) {
      starting.forEach(this::start);
      return;
    }
    Map<TopicPartition, Long> offsets = new HashMap<>();
    for (Item item : starting) {
      offsets.merge(item.partition(), item.offset() + 1, Math::max);
    }
    startRequests.add(new StartRequest(offsets, committed -> starting.forEach(item -> {
      if (committed.contains(item.partition())) {
        start(item);
      } else {
        done(item);  // its partition moved before the commit: its new owner runs it, not this one
      }
    })));
    consumer.wakeup();
  }

  private void start(Item item) {
    if (item.change().version() <= lastStarted.getOrDefault(item.key(), 0L)) {
      done(item);  // a change seen already: changes may be published more than once
      return;
    }
    lastStarted.put(item.key(), item.change().version());
    if (parking.isParked(item.key())) {
      park(item);
    } else {
      attempt(item, 1);
    }
  }

  private void attempt(Item item, int attemptNumber) {
    Admission admission = breaker.admit(() -> attempt(item, attemptNumber));
    if (admission == Admission.WAIT) {
      return;
    }
    Future<Void> delivery;
    try {
      delivery = sink.deliver(item.change()).timeout(effect.timeoutMs(), java.util.concurrent.TimeUnit.MILLISECONDS);
    } catch (RuntimeException e) {
      delivery = Future.failedFuture(e);
    }
    delivery.onComplete(result -> {
      if (result.succeeded()) {
        breaker.succeeded();
        stats.delivered.increment();
        done(item);
        return;
      }
      Throwable error = result.cause();
      if (error instanceof PermanentFailure) {
        breaker.succeeded();  // the target answered: it is up
        deadLetter(item, error.getMessage(), attemptNumber);
        return;
      }
      boolean counted = breaker.failed(admission);
      if (effect.delivery() == Delivery.AT_MOST_ONCE) {
        deadLetter(item, "at-most-once, not retried: " + error, attemptNumber);
      } else if (counted && attemptNumber >= effect.retry().attempts()) {
        deadLetter(item, error.toString(), attemptNumber);
      } else {
        stats.retried.increment();
        int next = counted ? attemptNumber + 1 : attemptNumber;  // a failure while the target is down costs no attempt
        vertx.setTimer(backoff(attemptNumber), id -> attempt(item, next));
      }
    });
  }

  private long backoff(int attemptNumber) {
    EffectConfig.Retry retry = effect.retry();
    double delay = Math.min(retry.maxDelayMs(), retry.initialDelayMs() * Math.pow(2, attemptNumber - 1));
    double jitter = 1 + retry.jitter() * (ThreadLocalRandom.current().nextDouble() * 2 - 1);
    return Math.max(1, (long) (delay * jitter));
  }

  private void deadLetter(Item item, String error, int attempts) {
    LOG.warn("effect worker {}: dead-lettering {} after {} attempts: {}", effect.name(), item.change().id(), attempts, error);
    writeDeadLetter(item, ParkingLot.deadLetter(effect.name(), item.change(), error, attempts), stats.deadLettered);
  }

  private void park(Item item) {
    writeDeadLetter(item, ParkingLot.parked(effect.name(), item.change(), parking.head(item.key())), stats.parked);
  }

  /** Writes to the dead-letter topic, retrying until it is written: only then is the change done. */
  private void writeDeadLetter(Item item, ObjectNode record, java.util.concurrent.atomic.LongAdder counter) {
    deadLetters.send(new ProducerRecord<>(config.effectDeadLetterTopic(effect.name()), item.key().toString(),
            Envelopes.toBytes(record)))
        .onSuccess(metadata -> {
          parking.apply(item.key().toString(), record);
          counter.increment();
          done(item);
        })
        .onFailure(e -> {
          LOG.error("effect worker {}: cannot write dead letter for {}, retrying: {}", effect.name(), item.change().id(),
              e.toString());
          vertx.setTimer(1000, id -> writeDeadLetter(item, record, counter));
        });
  }

  /** The item's effect is over (delivered or dead-lettered): release its key and its offset. */
  private void done(Item item) {
    ArrayDeque<Item> queue = queues.get(item.key());
    if (queue != null && queue.peek() == item) {
      queue.poll();
      buffered--;
      if (queue.isEmpty()) {
        queues.remove(item.key());
      } else {
        ready.add(item.key());
      }
    }
    busy.remove(item.key());
    finished(item.partition(), item.offset());
    overloaded = buffered > effect.maxInFlightKeys() * BUFFER_PER_KEY;
    dispatch();
  }

  /** At-least-once: the lowest unfinished offset of the partition is what may be committed. */
  private void finished(TopicPartition partition, long offset) {
    TreeSet<Long> pending = unfinished.get(partition);
    if (pending == null) {
      return;  // at-most-once, or a partition this worker no longer has
    }
    pending.remove(offset);
    committable.put(partition, pending.isEmpty() ? received.get(partition) : pending.first());
  }

  /** Drops what was queued for partitions given to another member; it will deliver them. */
  private void forget(Collection<TopicPartition> partitions) {
    Set<TopicPartition> gone = new HashSet<>(partitions);
    for (Iterator<Map.Entry<EntityRef, ArrayDeque<Item>>> it = queues.entrySet().iterator(); it.hasNext(); ) {
      Map.Entry<EntityRef, ArrayDeque<Item>> entry = it.next();
      boolean running = busy.contains(entry.getKey());
      Item head = entry.getValue().peek();
      int before = entry.getValue().size();
      entry.getValue().removeIf(item -> gone.contains(item.partition()) && !(running && item == head));
      buffered -= before - entry.getValue().size();
      if (entry.getValue().isEmpty()) {
        it.remove();
      }
    }
    ready.removeIf(key -> !queues.containsKey(key));
    gone.forEach(p -> {
      unfinished.remove(p);
      received.remove(p);
    });
    overloaded = buffered > effect.maxInFlightKeys() * BUFFER_PER_KEY;
  }

  /**
   * Replays the parked changes of an entity in order (after dropping the dead letter at the head
   * when {@code skipHead}), then releases the entity. Stops at the first change that fails again.
   */
  private Future<ObjectNode> resolve(JsonObject request, boolean skipHead) {
    String id = request.getString("key");
    List<EntityRef> parked = parking.withKey(id).stream()
        .filter(entity -> request.getString("type") == null || entity.type().equals(request.getString("type"))).toList();
    if (parked.isEmpty()) {
      return Future.failedFuture(KfoldException.notFound("worker " + effect.name() + " has no parked events for '" + id + "'"));
    }
    if (parked.size() > 1) {
      return Future.failedFuture(new KfoldException(409, "Ambiguous", "entities of several types with id '" + id
          + "' are parked: " + parked + "; name the type", Map.of()));
    }
    EntityRef key = parked.get(0);
    if (busy.contains(key)) {
      return Future.failedFuture(new KfoldException(409, "Busy", "an effect of '" + key + "' is running; try again",
          Map.of()));
    }
    busy.add(key);
    List<ParkingLot.Entry> entries = parking.entries(key);
    List<String> skipped = skipHead ? List.of(entries.get(0).id()) : List.of();
    List<String> replayed = new ArrayList<>();
    Promise<String> replay = Promise.promise();
    replayFrom(entries, skipped.size(), replayed, replay);
    return replay.future().compose(failure -> {
      List<Future<?>> writes = new ArrayList<>();
      if (!skipped.isEmpty()) {
        writes.add(writeResolved(key, skipped, "skipped"));
      }
      if (!replayed.isEmpty()) {
        writes.add(writeResolved(key, replayed, "replayed"));
      }
      return Future.all(writes).map(v -> {
        stats.skipped.add(skipped.size());
        ObjectNode result = JsonNodeFactory.instance.objectNode().put("type", key.type()).put("key", key.key())
            .put("replayed", replayed.size()).put("skipped", skipped.size())
            .put("stillParked", parking.entries(key).size());
        if (failure != null) {
          result.put("error", failure);
        }
        return result;
      });
    }).onComplete(done -> {
      busy.remove(key);
      if (queues.containsKey(key)) {
        ready.add(key);
      }
      dispatch();
    });
  }

  /** Delivers entries from {@code index} on, one after the other; completes with the first failure, or null. */
  private void replayFrom(List<ParkingLot.Entry> entries, int index, List<String> replayed, Promise<String> done) {
    if (index == entries.size()) {
      done.complete(null);
      return;
    }
    ParkingLot.Entry entry = entries.get(index);
    sink.deliver(Change.of(entry.change())).timeout(effect.timeoutMs(), java.util.concurrent.TimeUnit.MILLISECONDS)
        .onSuccess(v -> {
          stats.delivered.increment();
          replayed.add(entry.id());
          replayFrom(entries, index + 1, replayed, done);
        })
        .onFailure(e -> done.complete("replaying " + entry.id() + " failed: " + e.getMessage()));
  }

  private Future<Void> writeResolved(EntityRef key, List<String> ids, String how) {
    ObjectNode record = ParkingLot.resolved(effect.name(), key, ids, how);
    return deadLetters.send(new ProducerRecord<>(config.effectDeadLetterTopic(effect.name()), key.toString(),
            Envelopes.toBytes(record)))
        .onSuccess(m -> parking.apply(key.toString(), record)).mapEmpty();
  }

  private static int status(Throwable e) {
    return e instanceof KfoldException k ? k.status() : 500;
  }

  private static JsonObject jsonObject(JsonNode node) {
    return new JsonObject(Buffer.buffer(Envelopes.toBytes(node)));
  }

  /**
   * Stops deliveries while the target is down: after {@code failures} failures in a row it opens
   * for {@code openMs}, then lets one delivery through as a probe; the probe's success closes it,
   * its failure opens it again. Failures while it is not closed cost no attempts.
   */
  private final class Breaker {
    private int failuresInARow;
    private String state = "closed";
    private boolean probing;
    private final ArrayDeque<Runnable> waiting = new ArrayDeque<>();

    /** Answers whether the attempt may start now (and whether it is the probe), or parks it until then. */
    Admission admit(Runnable attempt) {
      switch (state) {
        case "closed" -> {
          return Admission.NORMAL;
        }
        case "half-open" -> {
          if (!probing) {
            probing = true;
            return Admission.PROBE;
          }
        }
        default -> {
          // open: wait
        }
      }
      waiting.add(attempt);
      return Admission.WAIT;
    }

    void succeeded() {
      failuresInARow = 0;
      if (!state.equals("closed")) {
        state = "closed";
        stats.breaker = state;
        probing = false;
        LOG.info("effect worker {}: the target answers again; resuming {} deliveries", effect.name(), waiting.size());
        while (!waiting.isEmpty()) {
          waiting.poll().run();
        }
      }
    }

    /** Counts a failure; answers whether it counts against the change's attempts. */
    boolean failed(Admission admission) {
      if (admission == Admission.PROBE) {
        probing = false;
        open();
        return false;
      }
      if (!state.equals("closed")) {
        return false;  // the target is known to be down
      }
      if (++failuresInARow >= effect.breaker().failures()) {
        LOG.warn("effect worker {}: {} failures in a row; pausing deliveries for {} ms", effect.name(), failuresInARow,
            effect.breaker().openMs());
        open();
        return false;
      }
      return true;
    }

    private void open() {
      state = "open";
      stats.breaker = state;
      vertx.setTimer(effect.breaker().openMs(), id -> {
        if (state.equals("open")) {
          state = "half-open";
          stats.breaker = state;
          if (!waiting.isEmpty()) {
            waiting.poll().run();  // it is admitted as the probe
          }
        }
      });
    }
  }

  private enum Admission { NORMAL, PROBE, WAIT }
}
