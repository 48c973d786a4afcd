package io.kfold.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.kfold.KfoldConfig;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.fold.FoldProgress;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.PoolOptions;
import io.vertx.ext.web.client.WebClient;
import io.vertx.ext.web.client.WebClientOptions;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * The {@code http} side-effect worker: how many changes per second it delivers to a target that
 * answers at once, next to a plain Vert.x {@link WebClient} loop posting as many change-sized bodies
 * to the same target with as many requests in flight, in the same run. The loop is the ceiling of
 * the HTTP path alone on this machine; the worker adds the changes consumer, per-key ordering and
 * offset bookkeeping.
 *
 * <p>The run: one broker; {@code events} bare JSON events over {@code keys} users produced to
 * {@code <app>.users.events}; a node folds them with the worker disabled, which fills
 * {@code <app>.users.changes}; the node stops. The baselines post bodies sampled from that changes
 * topic. Then a node restarts on the same store (nothing left to fold) with the worker enabled, and
 * the worker delivers every change from the first offset: the target counts distinct
 * {@code Idempotency-Key} headers from the first delivery to the last.
 *
 * <p>Usage: {@code load-tests/run.sh effects [--events N] [--keys K] [--in-flight N]}; see
 * load-tests/README.md.
 */
public final class EffectBenchmark {

  private static final String APP = "effect-bench";
  private static final String WORKER = "bench-hook";
  /** The pool a Vert.x 5 WebClient gets when it is given no PoolOptions. */
  private static final int DEFAULT_POOL = PoolOptions.DEFAULT_MAX_POOL_SIZE;
  private static final int SAMPLE_BODIES = 1000;
  private static final long WARMUP_REQUESTS = 50_000;
  private static final long STALL_SECONDS = 60;
  private static final long TIMEOUT_SECONDS = 900;

  record Options(long events, int keys, int inFlight) {

    static Options parse(Bench.Args args) {
      long events = 200_000;
      int keys = 10_000;
      int inFlight = 64;
      while (args.next()) {
        switch (args.option()) {
          case "--events" -> events = Long.parseLong(args.value().replace("_", ""));
          case "--keys" -> keys = Integer.parseInt(args.value().replace("_", ""));
          case "--in-flight" -> inFlight = Integer.parseInt(args.value());
          default -> args.common();
        }
      }
      if (keys < 1 || events < keys || inFlight < 1) {
        throw new IllegalArgumentException("--events must be at least --keys, and --keys and --in-flight positive");
      }
      return new Options(events, keys, inFlight);
    }
  }

  public static void main(String[] args) throws Exception {
    Bench.main(args, "effects", Options::parse, EffectBenchmark::run, EffectBenchmark::table);
  }

  private static void run(Options options, Bench.Run run) throws Exception {
    Map<String, Object> settings = new LinkedHashMap<>();
    settings.put("events", options.events());
    settings.put("keys", options.keys());
    settings.put("partitions", Input.PARTITIONS);
    settings.put("maxInFlightKeys", options.inFlight());
    settings.put("delivery", "at-least-once");
    settings.put("baselineInFlight", options.inFlight());
    run.json.put("settings", settings);
    run.announce(String.format("%,d events over %,d keys, %d in flight", options.events(), options.keys(),
        options.inFlight()));

    run.withBroker(broker -> {
      List<Map<String, Object>> phases = new ArrayList<>();
      run.json.put("phases", phases);
      HookServer hook = HookServer.launch();
      try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap()))) {
        Path config = writeConfig(run.workDir.resolve("kfold-effects.yaml"), hook.url(), options.inFlight());
        Map<String, String> env = Bench.nodeEnv(APP, run.workDir.resolve("kfold"), broker.bootstrap());
        env.put("KFOLD_CONFIG", config.toString());

        // 1. The input, folded once by a node without the worker: it fills the changes topic.
        Input input = new Input(APP, options.events(), options.keys());
        System.out.printf("%nproducing %s to %s ...%n", input.label(), input.topic);
        input.createTopic(admin);
        Map<String, Object> produce = input.produce(broker.bootstrap());
        run.json.put("produce", produce);
        Map<String, String> foldEnv = new HashMap<>(env);
        foldEnv.put("KFOLD_EFFECTS_" + WORKER.replace('-', '_').toUpperCase() + "_ENABLED", "false");
        run.json.put("fold", fold(foldEnv, input, broker.bootstrap()));

        String changesTopic = APP + "." + Input.TYPE + ".changes";
        List<byte[]> bodies = new ArrayList<>();
        run.json.put("changes", readChanges(broker.bootstrap(), changesTopic, options.events(), bodies));

        // 2. The baselines: a plain WebClient loop, with the pool it needs and with the default pool, after a
        // warm-up of the same loop (the JIT, the target's set of keys) that does not count.
        run.json.put("baselineWarmup", baseline(hook, bodies, options, Math.min(options.events(), WARMUP_REQUESTS),
            options.inFlight(), broker.pid(), "warm-up"));
        phases.add(baseline(hook, bodies, options, options.events(), options.inFlight(), broker.pid(),
            String.format("plain WebClient, %d in flight, %d connections", options.inFlight(), options.inFlight())));
        phases.add(baseline(hook, bodies, options, options.events(), DEFAULT_POOL, broker.pid(),
            String.format("plain WebClient, %d in flight, default pool (%d)", options.inFlight(), DEFAULT_POOL)));

        // 3. kfold's worker, from the first change.
        phases.add(worker(hook, env, options, broker.pid()));

        Map<String, Object> summary = new LinkedHashMap<>();
        long baseline = delivered(phases.get(0));
        long kfold = delivered(phases.get(2));
        summary.put("baselineDeliveredPerSecond", baseline);
        summary.put("baselineDefaultPoolDeliveredPerSecond", delivered(phases.get(1)));
        summary.put("kfoldWorkerDeliveredPerSecond", kfold);
        summary.put("kfoldToBaseline", Report.round((double) kfold / baseline, 4));
        summary.put("kfoldToDefaultPoolBaseline", Report.round((double) kfold / delivered(phases.get(1)), 4));
        run.json.put("summary", summary);
      } finally {
        hook.close();
      }
    });
  }

  /**
   * kfold's default configuration (the copy built into kfold) with its {@code effects} replaced by one
   * {@code http} worker on the users' changes.
   */
  private static Path writeConfig(Path file, String url, int inFlight) throws IOException {
    ObjectMapper yaml = new ObjectMapper(new YAMLFactory());
    ObjectNode tree;
    try (InputStream in = KfoldConfig.class.getResourceAsStream("/kfold.yaml")) {
      if (in == null) {
        throw new IllegalStateException("kfold.yaml is not on the classpath: build kfold first");
      }
      tree = (ObjectNode) yaml.readTree(in);
    }
    ObjectNode worker = tree.putObject("effects").putObject(WORKER);
    worker.put("enabled", true);
    worker.put("kind", "http");
    worker.put("delivery", "at-least-once");
    worker.putArray("entities").add(Input.TYPE);
    worker.put("maxInFlightKeys", inFlight);
    worker.putObject("target").put("url", url);
    Files.createDirectories(file.getParent());
    yaml.writeValue(file.toFile(), tree);
    return file;
  }

  /** Folds the input with the worker off, and waits until every change is on the changes topic. */
  private static Map<String, Object> fold(Map<String, String> env, Input input, String bootstrap) throws Exception {
    System.out.printf("folding without the worker ...%n");
    Vertx vertx = Vertx.vertx();
    Map<String, Object> result = new LinkedHashMap<>();
    try {
      long start = System.nanoTime();
      NodeRuntime node = NodeRuntime.start(vertx, NodeConfig.load(env)).await(120, TimeUnit.SECONDS);
      try {
        FoldProgress progress = node.progress();
        long deadline = start + TimeUnit.SECONDS.toNanos(TIMEOUT_SECONDS);
        while (progress.applied.sum() < input.events || !progress.caughtUp()) {
          if (System.nanoTime() > deadline) {
            throw new IllegalStateException("the fold applied " + progress.applied.sum() + " of " + input.events);
          }
          Thread.sleep(20);
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        String changes = APP + "." + Input.TYPE + ".changes";
        while (endOffsets(bootstrap, changes) < input.events) {
          if (System.nanoTime() > deadline) {
            throw new IllegalStateException("the changes topic holds " + endOffsets(bootstrap, changes) + " of "
                + input.events + " changes");
          }
          Thread.sleep(100);
        }
        result.put("applied", progress.applied.sum());
        result.put("seconds", Report.round(seconds, 3));
        result.put("eventsPerSecond", Math.round(input.events / seconds));
        result.put("secondsToChangesPublished", Report.round((System.nanoTime() - start) / 1e9, 3));
        System.out.printf("  folded in %.1f s, all changes published after %.1f s%n", seconds,
            (System.nanoTime() - start) / 1e9);
      } finally {
        node.stop().await(120, TimeUnit.SECONDS);
      }
    } finally {
      vertx.close().await(60, TimeUnit.SECONDS);
    }
    return result;
  }

  private static long endOffsets(String bootstrap, String topic) {
    try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(consumerConfig(bootstrap, "end-offsets"),
        new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
      List<TopicPartition> partitions = consumer.partitionsFor(topic).stream()
          .map(p -> new TopicPartition(topic, p.partition())).toList();
      return consumer.endOffsets(partitions).values().stream().mapToLong(Long::longValue).sum();
    }
  }

  private static Map<String, Object> consumerConfig(String bootstrap, String clientId) {
    Map<String, Object> conf = new HashMap<>();
    conf.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    conf.put(ConsumerConfig.CLIENT_ID_CONFIG, APP + "-" + clientId);
    conf.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    conf.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    conf.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 10_000);
    return conf;
  }

  /**
   * Reads the whole changes topic (no group) to count it and to keep an even sample of its records:
   * the bodies the baseline posts.
   */
  private static Map<String, Object> readChanges(String bootstrap, String topic, long expected, List<byte[]> sample) {
    long every = Math.max(1, expected / SAMPLE_BODIES);
    long count = 0;
    long bytes = 0;
    try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(consumerConfig(bootstrap, "changes-reader"),
        new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
      List<TopicPartition> partitions = consumer.partitionsFor(topic).stream()
          .map(p -> new TopicPartition(topic, p.partition())).toList();
      consumer.assign(partitions);
      consumer.seekToBeginning(partitions);
      long end = consumer.endOffsets(partitions).values().stream().mapToLong(Long::longValue).sum();
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
      while (count < end && System.nanoTime() < deadline) {
        for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofMillis(200))) {
          if (count % every == 0) {
            sample.add(record.value());
          }
          count++;
          bytes += record.value().length;
        }
      }
    }
    if (count != expected) {
      throw new IllegalStateException("the changes topic holds " + count + " changes, expected " + expected);
    }
    Map<String, Object> result = new LinkedHashMap<>();
    result.put("records", count);
    result.put("meanValueBytes", Math.round((double) bytes / count));
    result.put("sampledBodies", sample.size());
    System.out.printf("  %,d changes, %,d bytes each on average%n", count, Math.round((double) bytes / count));
    return result;
  }

  /**
   * The ceiling: one event loop (as the worker has) posts {@code events} sampled change bodies with
   * {@code inFlight} requests in flight through a pool of {@code poolSize} connections.
   */
  private static Map<String, Object> baseline(HookServer hook, List<byte[]> bodies, Options options, long requests,
                                              int poolSize, long brokerPid, String label) throws Exception {
    Bench.settle();
    System.out.printf("%n[baseline] %s ...%n", label);
    String name = label.equals("warm-up") ? "warm-up" : "baseline-pool-" + poolSize;
    HookServer.Tally tally = hook.begin(name);
    Vertx vertx = Vertx.vertx();
    Map<String, Object> result = new LinkedHashMap<>();
    try {
      WebClient client = WebClient.create(vertx, new WebClientOptions(), new PoolOptions().setHttp1MaxSize(poolSize));
      Context context = vertx.getOrCreateContext();
      CountDownLatch done = new CountDownLatch(options.inFlight());
      Meter meter = Meter.start(brokerPid);
      long start = System.nanoTime();
      Loop loop = new Loop(client, hook.url(), name + "-", bodies, requests, done);
      for (int l = 0; l < options.inFlight(); l++) {
        context.runOnContext(v -> loop.send());
      }
      if (!done.await(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
        throw new IllegalStateException("the baseline loop did not finish in " + TIMEOUT_SECONDS + " s");
      }
      double seconds = (System.nanoTime() - start) / 1e9;
      Map<String, Object> resources = meter.sample();
      client.close();
      result.put("name", name);
      result.put("label", label);
      result.put("inFlight", options.inFlight());
      result.put("poolSize", poolSize);
      result.put("requests", requests);
      result.put("failures", loop.failures);
      result.put("clientSeconds", Report.round(seconds, 3));
      result.put("clientRequestsPerSecond", Math.round(requests / seconds));
      result.put("target", hook.snapshot(tally));
      result.put("resources", resources);
    } finally {
      vertx.close().await(30, TimeUnit.SECONDS);
    }
    System.out.printf("  %,d delivered/s at the target (%d failures)%n", delivered(result), result.get("failures"));
    return result;
  }

  /** The baseline's requests: each lane sends the next body when its last one was answered. */
  private static final class Loop {
    private final WebClient client;
    private final String url;
    private final String keyPrefix;
    private final List<byte[]> bodies;
    private final long requests;
    private final CountDownLatch done;
    /** On the loop's one event loop only. */
    private long next;
    private volatile long failures;

    Loop(WebClient client, String url, String keyPrefix, List<byte[]> bodies, long requests, CountDownLatch done) {
      this.client = client;
      this.url = url;
      this.keyPrefix = keyPrefix;
      this.bodies = bodies;
      this.requests = requests;
      this.done = done;
    }

    void send() {
      long i = next++;
      if (i >= requests) {
        done.countDown();
        return;
      }
      client.postAbs(url)
          .putHeader("Idempotency-Key", keyPrefix + i)
          .putHeader("content-type", "application/json")
          .timeout(10_000)
          .sendBuffer(Buffer.buffer(bodies.get((int) (i % bodies.size()))))
          .onComplete(answer -> {
            if (answer.failed() || answer.result().statusCode() != 200) {
              failures++;
            }
            send();
          });
    }
  }

  /** kfold's worker: a node on the folded store with the worker on, until every change reached the target. */
  private static Map<String, Object> worker(HookServer hook, Map<String, String> env, Options options, long brokerPid)
      throws Exception {
    Bench.settle();
    String label = String.format("kfold http worker, maxInFlightKeys %d", options.inFlight());
    System.out.printf("%n[kfold] %s ...%n", label);
    HookServer.Tally tally = hook.begin("kfold");
    Vertx vertx = Vertx.vertx();
    Map<String, Object> result = new LinkedHashMap<>();
    result.put("name", "kfold-worker");
    result.put("label", label);
    try {
      Meter meter = Meter.start(brokerPid);
      long start = System.nanoTime();
      NodeRuntime node = NodeRuntime.start(vertx, NodeConfig.load(env)).await(120, TimeUnit.SECONDS);
      try {
        long deadline = start + TimeUnit.SECONDS.toNanos(TIMEOUT_SECONDS);
        long seen = -1;
        long lastProgress = System.nanoTime();
        while (tally.distinct < options.events()) {
          long now = System.nanoTime();
          if (tally.distinct != seen) {
            seen = tally.distinct;
            lastProgress = now;
          }
          if (now - lastProgress > TimeUnit.SECONDS.toNanos(STALL_SECONDS) || now > deadline) {
            result.put("target", hook.snapshot(tally));
            result.put("workerStatus", Bench.get(node.httpPort(), "/v1/_effects"));
            throw new IllegalStateException("the worker delivered " + seen + " of " + options.events()
                + " changes and then nothing for " + STALL_SECONDS + " s; worker status "
                + result.get("workerStatus"));
          }
          Thread.sleep(5);
        }
        Map<String, Object> resources = meter.sample();
        // Re-deliveries (at-least-once) would show as calls beyond the distinct keys; give stragglers a moment.
        Thread.sleep(1000);
        Map<String, Object> target = hook.snapshot(tally);
        result.put("secondsFromStartToFirstDelivery", Report.round((tally.firstNanos - start) / 1e9, 3));
        result.put("secondsFromStartToLastDelivery", Report.round((tally.lastNanos - start) / 1e9, 3));
        result.put("target", target);
        result.put("workerStatus", Bench.get(node.httpPort(), "/v1/_effects"));
        result.put("resources", resources);
      } finally {
        node.stop().await(120, TimeUnit.SECONDS);
      }
    } finally {
      vertx.close().await(60, TimeUnit.SECONDS);
    }
    System.out.printf("  %,d delivered/s at the target; first delivery %.2f s after the node started%n",
        delivered(result), result.get("secondsFromStartToFirstDelivery"));
    return result;
  }

  private static long delivered(Map<String, Object> phase) {
    Object rate = ((Map<?, ?>) phase.get("target")).get("deliveredPerSecond");
    return rate == null ? 0 : ((Number) rate).longValue();
  }

  static String table(Map<String, Object> run) {
    String format = "%-48s %14s %8s %12s %12s%n";
    StringBuilder out = new StringBuilder();
    out.append(String.format(format, "phase", "delivered/s", "calls", "redelivered", "connections"));
    for (Map<String, Object> phase : Bench.list(run, "phases")) {
      Map<?, ?> target = (Map<?, ?>) phase.get("target");
      out.append(String.format(format, phase.get("label"), String.format("%,d", delivered(phase)),
          String.format("%,d", (Long) target.get("calls")), target.get("redeliveries"),
          target.get("connectionsOpened")));
    }
    Map<?, ?> summary = (Map<?, ?>) run.get("summary");
    if (summary != null) {
      out.append(String.format("kfold worker / baseline: %.4f (/ the default-pool baseline: %.4f)%n",
          (Double) summary.get("kfoldToBaseline"), (Double) summary.get("kfoldToDefaultPoolBaseline")));
    }
    return out.toString();
  }
}
