package io.kfold.effects;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.kfold.config.NodeConfig;
import io.kfold.KfoldProcess;
import io.kfold.TestNodes;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.utils.Utils;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A kfold process whose worker delivers to a {@link TargetServer} while events keep coming, killed
 * with SIGKILL in the middle of its deliveries: for the tests of what each delivery guarantee
 * keeps across a crash.
 */
final class KillsDuringDelivery {

  /** The users the events are spread over, round robin: user {@code u<i % USERS>} gets event i. */
  static final int USERS = 200;
  private static final ObjectMapper JSON = new ObjectMapper();

  private KillsDuringDelivery() {}

  /** A kfold process, not started, whose one worker delivers the users' changes to {@code server}. */
  record Worker(NodeConfig config, KfoldProcess process) {

    /** @param delivery {@code at-least-once} or {@code at-most-once} */
    static Worker of(String name, String delivery, TargetServer server) throws IOException {
      String app = TestNodes.newApp(name);
      Map<String, String> env = TestNodes.envWithEffects(app, TestNodes.tempDir(name), "hook:\n"
          + "  kind: http\n"
          + "  delivery: " + delivery + "\n"
          + "  entities: [users]\n"
          + "  maxInFlightKeys: 16\n"
          + "  target: { url: \"" + server.url() + "\" }\n");
      env.put("KFOLD_KAFKA_GROUP_INSTANCE_ID", name + "-node");
      return new Worker(NodeConfig.load(env), new KfoldProcess(env, Path.of("target", name + "-" + app + ".log")));
    }
  }

  /**
   * Appends events to the users' log from another thread, {@code perTick} every 50 ms, until
   * {@link #stop}ped: the worker has changes to deliver whenever it is killed.
   */
  static final class Producing {
    private final AtomicBoolean stopping = new AtomicBoolean();
    private final CompletableFuture<Integer> produced;

    Producing(NodeConfig config, int perTick) {
      produced = CompletableFuture.supplyAsync(() -> {
        int i = 0;
        try (KafkaProducer<byte[], byte[]> producer = TestNodes.plainProducer()) {
          for (; !stopping.get(); i++) {
            producer.send(new ProducerRecord<>(config.eventsTopic("users"), ("u" + (i % USERS)).getBytes(StandardCharsets.UTF_8),
                ("{\"i\":" + i + "}").getBytes(StandardCharsets.UTF_8)));
            if (i % perTick == perTick - 1) {
              Thread.sleep(50);
            }
          }
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        return i;
      });
    }

    /** Stops, and answers how many events it appended. */
    int stop() throws Exception {
      stopping.set(true);
      return produced.get(60, TimeUnit.SECONDS);
    }
  }

  /** The ids ({@code <key>:<version>}) of the changes that {@code events} events of {@link Producing} lead to. */
  static Set<String> changes(int events) {
    Set<String> ids = new HashSet<>();
    for (int i = 0; i < events; i++) {
      ids.add("u" + (i % USERS) + ":" + (i / USERS + 1));
    }
    return ids;
  }

  /**
   * Appends one event for a new user in each partition of the users' log, and waits until the
   * worker has delivered each and runs nothing: a partition's changes are read in order, so every
   * change before the sentinels has been read, and with nothing running, dealt with.
   */
  static void awaitSentinels(NodeConfig config, KfoldProcess kfold, TargetServer server) throws Exception {
    Set<String> sentinels = new HashSet<>();
    Set<Integer> partitions = new HashSet<>();
    try (KafkaProducer<byte[], byte[]> producer = TestNodes.plainProducer()) {
      for (int n = 0; partitions.size() < config.kafka().partitions(); n++) {
        byte[] key = ("sentinel-" + n).getBytes(StandardCharsets.UTF_8);
        if (partitions.add(Utils.toPositive(Utils.murmur2(key)) % config.kafka().partitions())) {  // the producer's choice
          producer.send(new ProducerRecord<>(config.eventsTopic("users"), key, "{}".getBytes(StandardCharsets.UTF_8)));
          sentinels.add("sentinel-" + n + ":1");
        }
      }
    }
    HttpEffectTest.await("the sentinels delivered and nothing running", () -> {
      Set<String> delivered = new HashSet<>();
      server.calls().forEach(call -> delivered.add(call.changeId()));
      try {
        return delivered.containsAll(sentinels)
            && JSON.readTree(kfold.get("/v1/_effects")).path("workers").path("hook").path("inFlight").asInt() == 0;
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    });
  }

  /** What to do once a killed kfold answers again, before the next kill. */
  interface Restarted {
    void run(int kill) throws Exception;
  }

  /**
   * Kills kfold {@code kills} times and starts it again, each time once the target has had
   * {@code calls} more calls since the last start: the kill hits a worker in the middle of its
   * deliveries, whatever the machine's speed.
   */
  static void killWhileDelivering(KfoldProcess kfold, TargetServer server, int kills, int calls, Restarted restarted)
      throws Exception {
    for (int kill = 1; kill <= kills; kill++) {
      int before = server.deliveries();
      HttpEffectTest.await("the worker delivers " + calls + " changes before kill " + kill,
          () -> server.deliveries() >= before + calls);
      kfold.kill();
      kfold.start();
      restarted.run(kill);
    }
  }
}
