package io.kfold;

import io.kfold.log.LocalBroker;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.testcontainers.DockerClientFactory;
import org.testcontainers.kafka.KafkaContainer;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * One real Kafka broker for the whole test run: a container when a Docker engine answers, else
 * the same local broker {@code Main} starts, as a child JVM. Tests only see {@link #bootstrap()}.
 */
public final class TestBroker implements BeforeAllCallback {

  private static String bootstrap;

  @Override
  public void beforeAll(ExtensionContext context) throws Exception {
    synchronized (TestBroker.class) {
      if (bootstrap == null) {
        ExtensionContext.Store root = context.getRoot().getStore(ExtensionContext.Namespace.GLOBAL);
        if (dockerAvailable()) {
          KafkaContainer container = new KafkaContainer("apache/kafka:4.1.0");
          container.start();
          root.put("kfold-test-broker", (ExtensionContext.Store.CloseableResource) container::stop);
          bootstrap = container.getBootstrapServers();
        } else {
          Path dir = Files.createTempDirectory("kfold-test-broker");
          LocalBroker broker = LocalBroker.start(dir, LocalBroker.defaultLibs(), 0);
          root.put("kfold-test-broker", (ExtensionContext.Store.CloseableResource) broker::close);
          // Also when the test JVM is stopped from outside: a broker must not outlive its tests.
          Runtime.getRuntime().addShutdownHook(new Thread(broker::close, "kfold-test-broker-stop"));
          bootstrap = broker.bootstrap();
        }
      }
    }
  }

  public static String bootstrap() {
    if (bootstrap == null) {
      throw new IllegalStateException("annotate the test class with @ExtendWith(TestBroker.class)");
    }
    return bootstrap;
  }

  private static boolean dockerAvailable() {
    try {
      return DockerClientFactory.instance().isDockerAvailable();
    } catch (Throwable e) {
      return false;
    }
  }
}
