package io.kfold.effects;

import io.kfold.config.NodeConfig;
import io.kfold.log.KafkaClients;
import io.kfold.log.KafkaConsumerLoop;
import io.vertx.core.Context;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.function.Consumer;

/**
 * The consumer of a worker's changes topics, a loop that the node's supervisor runs as
 * {@code effects.<worker>}. Only the loop's thread touches the consumer: the worker's event loop
 * sends it {@link Command}s through one queue and hears from it through a {@link Listener}.
 *
 * <p>Each partition it is given starts paused, until the worker has read its dead-letter topic as
 * far as it was then ({@link Resume}): a change must not slip past a dead letter that another node
 * wrote for its entity before the partition moved here.
 */
final class ChangesLoop extends KafkaConsumerLoop<String, byte[]> {

  private static final Logger LOG = LoggerFactory.getLogger(ChangesLoop.class);

  /** What the loop tells the worker; called on the worker's event loop, in the order it happened. */
  interface Listener {
    /** A partition given to this worker; it stays paused until resumed. */
    void assigned(Lease lease);

    /** Partitions taken away, or lost with the consumer: their changes are read again from the committed offsets. */
    void revoked(Collection<Lease> leases);

    /** A poll, of resumed partitions only. */
    void received(ConsumerRecords<String, byte[]> records);
  }

  /** What the worker asks of the consumer. A command naming a lease that ended does nothing. */
  sealed interface Command permits Commit, CommitBeforeStart, Resume, Overloaded {}

  /**
   * Committed in the background, the latest per partition. At-least-once: everything below
   * {@code offset} is finished. At-most-once: the offset committed before the latest start again,
   * with fresher {@code metadata} (what a crash would leave undone, see {@link OffsetTracker.Unfinished}).
   */
  record Commit(Lease lease, OffsetAndMetadata offset) implements Command {
    Commit(Lease lease, long offset) {
      this(lease, new OffsetAndMetadata(offset));
    }
  }

  /**
   * At-most-once: commit these offsets now, then tell {@code then}, on the event loop, the leases
   * whose offsets were committed: only their effects may start.
   */
  record CommitBeforeStart(Map<Lease, OffsetAndMetadata> offsets, Consumer<Set<Lease>> then) implements Command {}

  /** The worker has read the dead-letter topic far enough: the partition may deliver. */
  record Resume(Lease lease) implements Command {}

  /** The worker holds too many changes: pause every partition until it does not. */
  record Overloaded(boolean overloaded) implements Command {}

  private final NodeConfig config;
  private final EffectConfig effect;
  private final Context context;
  private final EffectStats stats;
  private final Listener listener;
  private final Queue<Command> commands = new ConcurrentLinkedQueue<>();

  // The loop thread's own state. Lease numbers keep counting across restarts, so none is reused.
  private final Map<TopicPartition, Lease> leases = new HashMap<>();
  private long leasesGiven;
  private final Set<TopicPartition> awaitingResume = new HashSet<>();
  /** At-most-once: partitions given to this worker whose last commit is still to be read for what it left undone. */
  private final Set<TopicPartition> toAccount = new HashSet<>();
  private final Map<TopicPartition, Commit> toCommit = new HashMap<>();
  private boolean overloaded;

  ChangesLoop(NodeConfig config, EffectConfig effect, Context context, EffectStats stats, Listener listener) {
    this.config = config;
    this.effect = effect;
    this.context = context;
    this.stats = stats;
    this.listener = listener;
  }

  /** From the event loop. */
  void send(Command command) {
    commands.add(command);
    if (command instanceof CommitBeforeStart) {
      wakeup();  // effects wait for it: do not let it wait for a poll to time out
    }
  }

  @Override
  public void open() {
    consumer = new KafkaConsumer<>(consumerConfig(), new StringDeserializer(), new ByteArrayDeserializer());
    consumer.subscribe(effect.entities().stream().map(config::changesTopic).toList(), new Rebalance());
  }

  private Map<String, Object> consumerConfig() {
    Map<String, Object> conf = KafkaClients.settings(config.kafka(), Map.of());
    conf.put(ConsumerConfig.GROUP_ID_CONFIG, config.effectGroup(effect.name()));
    conf.put(ConsumerConfig.CLIENT_ID_CONFIG, config.effectGroup(effect.name()) + "-consumer");
    conf.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    conf.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    conf.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 500);
    // Changes come in the fold's transactions: never deliver one of an aborted or fenced poll.
    conf.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    // As for the fold: every node reacts to its share of each type, only moved partitions pause, static
    // membership (a restarted node takes its partitions back at once, the node directory removes a
    // silent node by name) and the same session timeout.
    KafkaClients.groupMember(conf, config.workerInstanceId(effect.name()), config.kafka().sessionTimeoutMs());
    return conf;
  }

  @Override
  public void runOnce() {
    accountForUnfinished();
    runCommands();
    pauseOrResume();
    commitInBackground();
    ConsumerRecords<String, byte[]> records = consumer.poll(Duration.ofMillis(100));
    Set<TopicPartition> assignment = consumer.assignment();
    stats.partitions = assignment.size();
    stats.lag = assignment.stream().mapToLong(p -> consumer.currentLag(p).orElse(0)).sum();
    if (!records.isEmpty()) {
      context.runOnContext(v -> listener.received(records));
    }
  }

  /** Runs the commands in order; one that fails stays first in the queue for the next round. */
  private void runCommands() {
    for (Command command; (command = commands.peek()) != null; ) {
      run(command);
      commands.poll();
    }
  }

  private void run(Command command) {
    if (command instanceof Commit commit) {
      if (holds(commit.lease())) {
        toCommit.put(commit.lease().partition(), commit);
      }
    } else if (command instanceof CommitBeforeStart start) {
      // What waits for the background goes with it: never committed after it, so never over it,
      // and the other partitions' metadata is as fresh as this one's.
      Map<TopicPartition, OffsetAndMetadata> offsets = pendingCommits(leases.keySet());
      Set<Lease> committed = new HashSet<>();
      start.offsets().forEach((lease, offset) -> {
        if (holds(lease)) {
          offsets.put(lease.partition(), offset);
          committed.add(lease);
        }
      });
      if (!offsets.isEmpty()) {
        commitSync(offsets);
      }
      context.runOnContext(v -> start.then().accept(committed));
    } else if (command instanceof Resume resume) {
      if (holds(resume.lease())) {
        awaitingResume.remove(resume.lease().partition());
      }
    } else if (command instanceof Overloaded load) {
      overloaded = load.overloaded();
    }
  }

  /**
   * At-most-once: counts what the previous reader of each newly given partition left undone below
   * its last commit (it crashed, or the partition moved away), as {@code lost} (passed over: never
   * started) and {@code outcomeUnknown} (running: the target may have had them), then commits the
   * same offset without them, so that the next reader does not count them again. The partitions
   * are still paused: nothing of them has started here yet.
   */
  private void accountForUnfinished() {
    toAccount.retainAll(leases.keySet());
    if (toAccount.isEmpty()) {
      return;
    }
    Map<TopicPartition, OffsetAndMetadata> committed = committed(Set.copyOf(toAccount));
    Map<TopicPartition, OffsetAndMetadata> cleared = new HashMap<>();
    committed.forEach((partition, offset) -> {
      OffsetTracker.Unfinished left = offset == null ? OffsetTracker.Unfinished.NONE
          : OffsetTracker.Unfinished.parse(offset.metadata());
      if (left.any()) {
        LOG.warn("effect worker {}: {} lost at-most-once changes below offset {} of {}: {} passed over, never started;"
            + " {} running, their outcome unknown", effect.name(), left.passedOver() + left.running(), offset.offset(),
            partition, left.passedOver(), left.running());
        stats.lost.add(left.passedOver());
        stats.outcomeUnknown.add(left.running());
        cleared.put(partition, new OffsetAndMetadata(offset.offset()));
      }
    });
    if (!cleared.isEmpty()) {
      commitSync(cleared);
    }
    toAccount.clear();
  }

  /** A wakeup meant for poll may hit the read instead: it is then simply made again. */
  private Map<TopicPartition, OffsetAndMetadata> committed(Set<TopicPartition> partitions) {
    while (true) {
      try {
        return consumer.committed(partitions, Duration.ofSeconds(30));
      } catch (WakeupException e) {
        // the wakeup is used up: the next try goes through
      }
    }
  }

  private boolean holds(Lease lease) {
    return lease.equals(leases.get(lease.partition()));
  }

  private void pauseOrResume() {
    Set<TopicPartition> assignment = consumer.assignment();
    Set<TopicPartition> wanted = new HashSet<>(overloaded ? assignment : awaitingResume);
    wanted.retainAll(assignment);
    Set<TopicPartition> paused = consumer.paused();
    List<TopicPartition> pause = wanted.stream().filter(p -> !paused.contains(p)).toList();
    List<TopicPartition> resume = paused.stream().filter(p -> !wanted.contains(p)).toList();
    if (!pause.isEmpty()) {
      consumer.pause(pause);
    }
    if (!resume.isEmpty()) {
      consumer.resume(resume);
    }
  }

  private void commitInBackground() {
    Map<TopicPartition, OffsetAndMetadata> offsets = pendingCommits(leases.keySet());
    if (!offsets.isEmpty()) {
      consumer.commitAsync(offsets, (done, error) -> {
        if (error != null) {
          LOG.debug("effect worker {}: commit failed, a later one will cover it: {}", effect.name(), error.toString());
        }
      });
    }
  }

  /** Takes the offsets waiting to be committed for these partitions, of the leases still held. */
  private Map<TopicPartition, OffsetAndMetadata> pendingCommits(Collection<TopicPartition> partitions) {
    Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
    for (TopicPartition partition : partitions) {
      Commit commit = toCommit.remove(partition);
      if (commit != null && holds(commit.lease())) {
        offsets.put(partition, commit.offset());
      }
    }
    return offsets;
  }

  /** A wakeup meant for poll may hit a commit instead: the commit is then simply made again. */
  private void commitSync(Map<TopicPartition, OffsetAndMetadata> offsets) {
    while (true) {
      try {
        consumer.commitSync(offsets, Duration.ofSeconds(30));
        return;
      } catch (WakeupException e) {
        // the wakeup is used up: the next try goes through
      }
    }
  }

  /** Commits what is finished for the partitions, then ends their leases. */
  private void end(Collection<TopicPartition> partitions, boolean commit) {
    if (commit) {
      try {
        runCommands();
        Map<TopicPartition, OffsetAndMetadata> offsets = pendingCommits(partitions);
        if (!offsets.isEmpty()) {
          commitSync(offsets);
        }
      } catch (RuntimeException e) {
        LOG.warn("effect worker {}: last commit for {} failed; their changes may be delivered again: {}", effect.name(),
            partitions, e.toString());
      }
    }
    List<Lease> ended = new ArrayList<>();
    for (TopicPartition partition : partitions) {
      Lease lease = leases.remove(partition);
      if (lease != null) {
        ended.add(lease);
      }
      awaitingResume.remove(partition);
      toAccount.remove(partition);
      toCommit.remove(partition);
    }
    if (!ended.isEmpty()) {
      context.runOnContext(v -> listener.revoked(ended));
    }
  }

  /** Commits what is finished and ends every lease: after a restart the worker starts from the committed offsets. */
  @Override
  public void close(boolean stopping) {
    if (consumer != null) {
      end(List.copyOf(leases.keySet()), true);
      try {
        closeConsumer(Duration.ofSeconds(10), stopping);
      } catch (RuntimeException e) {
        LOG.warn("effect worker {}: closing the consumer failed: {}", effect.name(), e.toString());
      }
    }
    end(List.copyOf(leases.keySet()), false);
  }

  /** Runs inside poll, on the loop's thread. */
  private final class Rebalance implements ConsumerRebalanceListener {
    @Override
    public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
      end(partitions, true);
    }

    @Override
    public void onPartitionsLost(Collection<TopicPartition> partitions) {
      end(partitions, false);  // another member may have them already: committing is not ours to do
    }

    @Override
    public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
      if (partitions.isEmpty()) {
        return;
      }
      consumer.pause(partitions);
      for (TopicPartition partition : partitions) {
        Lease lease = new Lease(partition, ++leasesGiven);
        leases.put(partition, lease);
        awaitingResume.add(partition);
        if (effect.delivery() == EffectConfig.Delivery.AT_MOST_ONCE) {
          toAccount.add(partition);  // read in the loop, not here: the callback only records what changed
        }
        context.runOnContext(v -> listener.assigned(lease));
      }
      LOG.info("effect worker {} reacting to {}", effect.name(), partitions);
    }
  }
}
