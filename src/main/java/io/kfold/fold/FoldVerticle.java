package io.kfold.fold;

import io.kfold.KfoldConfig;
import io.kfold.entity.EntityTypes;
import io.kfold.log.Supervisor;
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
 */
public final class FoldVerticle extends VerticleBase {

  private final KfoldConfig config;
  private final EntityTypes types;
  private final EntityStore store;
  private final FoldWatch watch;
  private final FoldProgress progress;
  private final Supplier<Set<TopicPartition>> standbysWanted;
  private final Supervisor supervisor;
  private final Duration maxPollInterval;
  private final String transactionalId;
  private Supervisor.Running loop;

  public FoldVerticle(KfoldConfig config, EntityTypes types, EntityStore store, FoldWatch watch,
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
    loop = supervisor.start("fold", new FoldLoop(config, types, store, watch, progress, vertx.eventBus(), standbysWanted,
        maxPollInterval, transactionalId, Clock.systemUTC()));
    return Future.succeededFuture();
  }

  @Override
  public Future<?> stop() {
    return vertx.executeBlocking(() -> {
      if (!loop.stop(Duration.ofSeconds(60))) {
        throw new IllegalStateException("the fold did not stop within 60 s");
      }
      return null;
    });
  }

  /** The event-bus address where local verticles follow the accepted events of a type. */
  public static String changesAddress(String type) {
    return "kfold." + type + ".changes";
  }
}
