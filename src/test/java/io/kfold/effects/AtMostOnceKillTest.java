package io.kfold.effects;

import io.kfold.KfoldConfig;
import io.kfold.KfoldProcess;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.vertx.core.Vertx;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/** At-most-once across kill -9: the worker may lose effects, never run one twice. */
@ExtendWith(TestBroker.class)
class AtMostOnceKillTest {

  private static final Logger LOG = LoggerFactory.getLogger(AtMostOnceKillTest.class);
  private static final int EVENTS = 4_000;

  /** The worker holds its partitions, has read them to the end, and has nothing running. */
  private static boolean caughtUp(String status) {
    return status.contains("\"lag\":0,") && status.contains("\"inFlight\":0,") && !status.contains("\"partitions\":0");
  }

  @Test
  @DisplayName("at-most-once, kfold killed with SIGKILL three times: no change is delivered twice; the losses are counted")
  void neverTwice() throws Exception {
    Vertx vertx = Vertx.vertx();
    TargetServer server = new TargetServer(vertx);
    String app = TestNodes.newApp("amo");
    Path dir = TestNodes.tempDir("amo");
    Map<String, String> env = TestNodes.envWithEffects(app, dir, "hook:\n"
        + "  kind: http\n"
        + "  delivery: at-most-once\n"
        + "  entities: [users]\n"
        + "  maxInFlightKeys: 16\n"
        + "  target: { url: \"" + server.url() + "\" }\n");
    env.put("KFOLD_KAFKA_GROUP_INSTANCE_ID", "amo-node");
    KfoldConfig config = KfoldConfig.load(env);
    KfoldProcess kfold = new KfoldProcess(env, Path.of("target", "amo-" + app + ".log"));
    try {
      kfold.start();
      CompletableFuture<Void> producing = CompletableFuture.runAsync(() -> {
        try (KafkaProducer<byte[], byte[]> producer = TestNodes.plainProducer()) {
          for (int i = 0; i < EVENTS; i++) {
            producer.send(new ProducerRecord<>(config.eventsTopic("users"), ("u" + (i % 200)).getBytes(StandardCharsets.UTF_8),
                ("{\"i\":" + i + "}").getBytes(StandardCharsets.UTF_8)));
            if (i % 100 == 99) {
              Thread.sleep(50);
            }
          }
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      });
      for (int kill = 0; kill < 3; kill++) {
        Thread.sleep(1200);
        kfold.kill();
        kfold.start();
      }
      producing.get(120, TimeUnit.SECONDS);
      kfold.awaitStatus("/ready", 200);
      long deadline = System.currentTimeMillis() + 60_000;
      while (!caughtUp(kfold.get("/v1/_effects"))) {
        assertThat(System.currentTimeMillis()).as("the worker catches up").isLessThan(deadline);
        Thread.sleep(100);
      }
      Thread.sleep(500);

      assertThat(server.calls.values()).as("no change delivered twice").allMatch(count -> count.get() == 1);
      int delivered = server.calls.size();
      LOG.info("at-most-once across 3 kills: {} of {} changes delivered, {} lost", delivered, EVENTS, EVENTS - delivered);
      assertThat(delivered).isLessThanOrEqualTo(EVENTS).isGreaterThan(EVENTS / 2);
    } finally {
      kfold.stop();
      server.close();
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

}
