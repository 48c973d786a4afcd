package io.kfold.examples.payments;

import io.kfold.KfoldConfig;
import io.kfold.KfoldNode;
import io.kfold.LocalKafka;
import io.vertx.core.Vertx;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The payments application, with kfold embedded: a kfold node in the application's own Vert.x,
 * serving the types orders ({@code payments-app.yaml}) and payments (given in code), and {@link PaymentsOnOrders}
 * beside it. Without {@code KFOLD_KAFKA_BOOTSTRAP} it starts a local Kafka broker under the data
 * folder. Stops all of it, in reverse order, on exit.
 */
public final class PaymentsApp implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(PaymentsApp.class);
  private static final String CONFIG = "payments-app.yaml";

  private final LocalKafka kafka;
  private final Vertx vertx;
  private final KfoldNode node;
  private final PaymentsOnOrders reactions;
  private final String bootstrap;

  private PaymentsApp(LocalKafka kafka, Vertx vertx, KfoldNode node, PaymentsOnOrders reactions, String bootstrap) {
    this.kafka = kafka;
    this.bootstrap = bootstrap;
    this.vertx = vertx;
    this.node = node;
    this.reactions = reactions;
  }

  public static void main(String[] args) {
    PaymentsApp app = start(System.getenv());
    Runtime.getRuntime().addShutdownHook(new Thread(app::close, "payments-shutdown"));
  }

  /**
   * Starts the application with the {@code KFOLD_*} variables of {@code env} over its configuration
   * and waits until it runs. Blocks: call it from a main thread, not an event loop.
   */
  public static PaymentsApp start(Map<String, String> env) {
    KfoldConfig config = KfoldConfig.fromYaml(configuration(), env);
    LocalKafka kafka = null;
    if (config.kafkaBootstrap().isBlank()) {
      kafka = LocalKafka.start(config.dataDir().resolve("kafka"));
      config = config.withBootstrap(kafka.bootstrap());
    }
    Vertx vertx = Vertx.vertx();
    KfoldNode node = null;
    try {
      // Payments is this application's own class: given in code, no configuration names it.
      node = KfoldNode.start(vertx, config, KfoldNode.Options.DEFAULTS.withType(new Payments()))
          .await(120, TimeUnit.SECONDS);
      PaymentsOnOrders reactions = new PaymentsOnOrders();
      vertx.deployVerticle(reactions).await(30, TimeUnit.SECONDS);
      LOG.info("payments running: kfold on Kafka {}, HTTP port {}", config.kafkaBootstrap(), node.httpPort());
      return new PaymentsApp(kafka, vertx, node, reactions, config.kafkaBootstrap());
    } catch (Exception e) {
      new PaymentsApp(kafka, vertx, node, null, config.kafkaBootstrap()).close();
      throw e instanceof RuntimeException runtime ? runtime : new IllegalStateException("payments did not start", e);
    }
  }

  /** This application's configuration, from its jar. */
  private static String configuration() {
    try (InputStream in = PaymentsApp.class.getClassLoader().getResourceAsStream(CONFIG)) {
      if (in == null) {
        throw new IllegalStateException(CONFIG + " is missing from the class path");
      }
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + CONFIG, e);
    }
  }

  /** The application's Vert.x, where kfold's event-bus addresses are. */
  public Vertx vertx() {
    return vertx;
  }

  /** The Kafka cluster the node runs on: the local broker's, or KFOLD_KAFKA_BOOTSTRAP. */
  public String kafkaBootstrap() {
    return bootstrap;
  }

  public PaymentsOnOrders reactions() {
    return reactions;
  }

  public int httpPort() {
    return node.httpPort();
  }

  /**
   * Stops the node, then Vert.x (and the verticle with it), then the local broker if it started one.
   * The node first: its workers and fold finish with Kafka still there.
   */
  @Override
  public void close() {
    try {
      if (node != null) {
        node.stop().await(60, TimeUnit.SECONDS);
      }
      vertx.close().await(30, TimeUnit.SECONDS);
    } catch (Exception e) {
      LOG.warn("stopping payments: {}", e.toString());
    }
    if (kafka != null) {
      kafka.close();
    }
  }
}
