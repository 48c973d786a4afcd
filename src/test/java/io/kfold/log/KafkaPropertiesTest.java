package io.kfold.log;

import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.vertx.core.Vertx;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.LogEvent;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.appender.AbstractAppender;
import org.apache.logging.log4j.core.config.Configuration;
import org.apache.logging.log4j.core.config.LoggerConfig;
import org.apache.logging.log4j.core.config.Property;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code kafka.properties} reaches every Kafka client a node creates. Kafka logs the settings of each
 * client it builds, whoever built them; the test reads those lines, so a client whose settings were
 * made outside {@link KafkaClients} shows up without the marker instead of going unseen.
 */
@ExtendWith(TestBroker.class)
class KafkaPropertiesTest {

  /** Harmless (the default is 300000), and set by nothing but the user's properties. */
  private static final String MARKER = "metadata.max.age.ms = 299999";
  /** Where Kafka logs each client's settings ("ProducerConfig values: ..."), for every kind of client. */
  private static final String CONFIG_LOGGER = "org.apache.kafka.common.config.AbstractConfig";
  private static final Pattern CLIENT_SETTINGS = Pattern.compile("^(ProducerConfig|ConsumerConfig|AdminClientConfig) values:");
  private static final Pattern CLIENT_ID = Pattern.compile("\\bclient\\.id = (\\S*)");

  @Test
  @DisplayName("every Kafka client of a node, fold, publishers, readers, directory, worker and admin, gets kafka.properties")
  void everyClientGetsTheProperties() throws Exception {
    String app = TestNodes.newApp("props");
    Map<String, String> env = new java.util.HashMap<>(TestNodes.env(app, TestNodes.tempDir("props")));
    env.put("KFOLD_KAFKA_PROPERTIES_METADATA_MAX_AGE_MS", "299999");
    NodeConfig config = NodeConfig.load(env);
    String worker = config.effectGroup("shipment-request");
    Set<String> expected = new TreeSet<>(List.of(app + "-topics", app + "-writer", app + "-readiness", app + "-fold",
        app + "-fold-publisher", app + "-fold-tail-reader", app + "-fold-restore", app + "-fold-standby",
        app + "-directory", app + "-directory-reader", worker + "-consumer", worker + "-dlq",
        config.effectDeadLetterTopic("shipment-request") + "-reader"));

    List<String> logged = new ArrayList<>();
    Runnable stopCapture = capture(logged);
    Vertx vertx = Vertx.vertx();
    try {
      NodeRuntime node = TestNodes.startCaughtUp(vertx, config);
      try {
        long deadline = System.currentTimeMillis() + 60_000;
        while (!clientIds(logged).containsAll(expected) && System.currentTimeMillis() < deadline) {
          Thread.sleep(50);
        }
      } finally {
        node.stop().await(60, TimeUnit.SECONDS);
      }
    } finally {
      vertx.close().await(30, TimeUnit.SECONDS);
      stopCapture.run();
    }
    assertThat(clientIds(logged)).as("clients the node created").containsAll(expected);
    synchronized (logged) {
      for (String settings : logged) {
        assertThat(settings).as("settings of the client %s", clientId(settings)).contains(MARKER);
      }
    }
  }

  private static Set<String> clientIds(List<String> logged) {
    synchronized (logged) {
      Set<String> ids = new TreeSet<>();
      logged.forEach(settings -> ids.add(clientId(settings)));
      return ids;
    }
  }

  private static String clientId(String settings) {
    Matcher matcher = CLIENT_ID.matcher(settings);
    return matcher.find() ? matcher.group(1) : "(none)";
  }

  /** Collects the settings Kafka logs for each client it builds (INFO, kept out of the test's output). */
  private static Runnable capture(List<String> logged) {
    LoggerContext context = (LoggerContext) LogManager.getContext(false);
    Configuration configuration = context.getConfiguration();
    AbstractAppender appender = new AbstractAppender("kafka-client-settings", null, null, true, Property.EMPTY_ARRAY) {
      @Override
      public void append(LogEvent event) {
        String message = event.getMessage().getFormattedMessage();
        if (CLIENT_SETTINGS.matcher(message).find()) {
          synchronized (logged) {
            logged.add(message);
          }
        }
      }
    };
    appender.start();
    configuration.addAppender(appender);
    LoggerConfig logger = new LoggerConfig(CONFIG_LOGGER, Level.INFO, false);
    logger.addAppender(appender, Level.INFO, null);
    configuration.addLogger(CONFIG_LOGGER, logger);
    context.updateLoggers();
    return () -> {
      configuration.removeLogger(CONFIG_LOGGER);
      context.updateLoggers();
      appender.stop();
    };
  }
}
