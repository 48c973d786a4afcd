package io.kfold;

import io.kfold.log.LocalBroker;
import io.vertx.core.Vertx;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.concurrent.TimeUnit;

/**
 * Reads the configuration, starts the local broker when no cluster is configured, starts the node,
 * and stops all of it, in reverse order, on exit.
 */
public final class Main {

  private static final Logger LOG = LoggerFactory.getLogger(Main.class);

  private Main() {}

  public static void main(String[] args) throws Exception {
    KfoldConfig config;
    try {
      config = KfoldConfig.load(System.getenv());
    } catch (IllegalArgumentException e) {
      LOG.error("{}", e.getMessage());
      System.exit(2);
      return;
    }
    LocalBroker broker = null;
    if (config.kafka().embedded()) {
      LOG.info("no Kafka configured (KFOLD_KAFKA_BOOTSTRAP): starting a local broker");
      broker = LocalBroker.start(config.dataDir().resolve("kafka"), LocalBroker.defaultLibs(), config.kafka().localPort());
      config = config.withBootstrap(broker.bootstrap());
    }
    Vertx vertx = Vertx.vertx();
    KfoldNode node;
    try {
      node = KfoldNode.start(vertx, config).await(120, TimeUnit.SECONDS);
    } catch (Exception e) {
      LOG.error("kfold failed to start: {}", e.toString(), e);
      vertx.close().await(30, TimeUnit.SECONDS);
      if (broker != null) {
        broker.close();
      }
      System.exit(1);
      return;
    }
    LOG.info("kfold '{}' running on Kafka {}", config.app(), config.kafka().bootstrap());
    LocalBroker started = broker;
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      LOG.info("stopping kfold");
      try {
        node.stop().await(60, TimeUnit.SECONDS);
        vertx.close().await(30, TimeUnit.SECONDS);
      } catch (Exception e) {
        LOG.warn("stopping kfold: {}", e.toString());
      }
      if (started != null) {
        started.close();
      }
      LOG.info("kfold stopped");
      org.apache.logging.log4j.LogManager.shutdown();
    }, "kfold-shutdown"));
  }
}
