package io.kfold;

import io.kfold.log.LocalBroker;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;

/**
 * A single-node Kafka broker on this machine, for developing and testing an application that
 * embeds kfold without a Kafka cluster: the broker kfold itself starts when no
 * {@code kafka.bootstrap} is configured. It runs as a child JVM from the Kafka broker jars in a
 * folder, listens on 127.0.0.1 only, and keeps its data, log and ports in its own folder, so that a
 * restart on the same folder finds its topics again. Not for production: one broker, no replicas.
 *
 * <pre>{@code
 * try (LocalKafka kafka = LocalKafka.start(Path.of("data/kafka"))) {
 *   KfoldConfig config = ...;  // kafka.bootstrap = kafka.bootstrap()
 * }
 * }</pre>
 */
public final class LocalKafka implements AutoCloseable {

  /** The system property that names the folder of the broker jars. */
  public static final String LIBS_PROPERTY = "kfold.kafka.libs";

  private final LocalBroker broker;

  private LocalKafka(LocalBroker broker) {
    this.broker = broker;
  }

  /**
   * Starts a broker in {@code dataDir} (created when missing) and waits until it answers. Its jars
   * come from the folder named by the system property {@value #LIBS_PROPERTY}, else from the folder
   * {@code kafka-broker} beside kfold's own jar (or classes folder), where kfold's build puts them.
   * It blocks for the few seconds the broker takes to start: call it before Vert.x, or from a
   * worker, never on an event loop.
   *
   * @throws IllegalStateException when there are no broker jars, or the broker does not start (its
   *                               log, in {@code dataDir}, says why)
   */
  public static LocalKafka start(Path dataDir) {
    String libs = System.getProperty(LIBS_PROPERTY);
    return start(dataDir, libs == null || libs.isBlank() ? LocalBroker.defaultLibs() : Path.of(libs));
  }

  /** The same, with the broker jars from {@code libs}. */
  public static LocalKafka start(Path dataDir, Path libs) {
    try {
      return new LocalKafka(LocalBroker.start(dataDir, libs, 0));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot start a local Kafka broker in " + dataDir, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while starting a local Kafka broker in " + dataDir, e);
    }
  }

  /** {@code host:port} of the broker, for {@code kafka.bootstrap} ({@code KFOLD_KAFKA_BOOTSTRAP}). */
  public String bootstrap() {
    return broker.bootstrap();
  }

  /** Stops the broker and waits until it has exited; its data stays. A second call does nothing. */
  @Override
  public void close() {
    broker.close();
  }
}
