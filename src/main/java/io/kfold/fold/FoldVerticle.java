package io.kfold.fold;

import io.kfold.config.NodeConfig;
import io.kfold.types.EntityTypes;
import io.kfold.log.Supervisor;
import io.kfold.query.IndexBuilds;
import io.kfold.store.EntityStore;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import org.apache.kafka.common.TopicPartition;

import java.time.Clock;
import java.time.Duration;
import java.util.Set;
import java.util.function.Supplier;

/**
 * Folds the partitions of the events topics that the consumer group gives this node: deploys the
 * fold's loop ({@link FoldLoop}) under the node's supervisor as the loop named {@code fold}, which
 * retries it after a retriable error and opens it again after any other failure. The consumer, the
 * fold and the store writes run on the loop's thread, never an event loop. Each accepted change is
 * published on the event bus ({@link #changesAddress}) as the JSON of its change record in a
 * {@code Buffer}.
 *
 * <p>Before the fold starts, makes the store's index entries follow the declared indexes
 * ({@link IndexBuilds#reconcile}), and builds those that need it on a loop of their own,
 * {@code index-builds}, while the fold goes on.
 */
public final class FoldVerticle extends VerticleBase {

  private final NodeConfig config;
  private final EntityTypes types;
  private final EntityStore store;
  private final FoldWatch watch;
  private final FoldProgress progress;
  private final Supplier<Set<TopicPartition>> standbysWanted;
  private final Supervisor supervisor;
  private final Duration maxPollInterval;
  private final String transactionalId;
  private Supervisor.Running loop;
  private Supervisor.Running builds;

  public FoldVerticle(NodeConfig config, EntityTypes types, EntityStore store, FoldWatch watch,
                      FoldProgress progress, Supplier<Set<TopicPartition>> standbysWanted, Supervisor supervisor,
                      Duration maxPollInterval, String transactionalId) {
    this.transactionalId = transactionalId;
    this.config = config;
    this.types = types;
    this.store = store;
    this.watch = watch;
    this.progress = progress;
    this.standbysWanted = standbysWanted;
    this.supervisor = supervisor;
    this.maxPollInterval = maxPollInterval;
  }

  @Override
  public Future<?> start() {
    IndexBuilds indexBuilds = new IndexBuilds(types, store);
    // Before the fold writes any entry: a changed index's old entries are deleted first.
    return vertx.executeBlocking(() -> {
      indexBuilds.reconcile();
      return null;
    }).onSuccess(v -> {
      loop = supervisor.start("fold", new FoldLoop(config, types, store, watch, progress, vertx.eventBus(),
          standbysWanted, maxPollInterval, transactionalId, Clock.systemUTC()));
      builds = supervisor.start("index-builds", new IndexBuildLoop(indexBuilds));
    });
  }

  @Override
  public Future<?> stop() {
    return vertx.executeBlocking(() -> {
      boolean buildsStopped = builds == null || builds.stop(Duration.ofSeconds(60));
      if (loop != null && !loop.stop(Duration.ofSeconds(60))) {
        throw new IllegalStateException("the fold did not stop within 60 s");
      }
      if (!buildsStopped) {
        throw new IllegalStateException("the index builds did not stop within 60 s");
      }
      return null;
    });
  }

  /**
   * The event-bus address where verticles follow the accepted events of a type: local ones, and on a
   * clustered event bus those of every JVM, each change published once, by the node that folded it.
   */
  public static String changesAddress(String type) {
    return "kfold." + type + ".changes";
  }
}
