package io.kfold.bench;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.http.RequestOptions;
import org.HdrHistogram.ConcurrentHistogram;
import org.HdrHistogram.Histogram;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * The HTTP load of the commands benchmark, in a JVM of its own so that its CPU, garbage and JIT
 * are not the server's. {@link CommandBenchmark} starts one per phase and reads the JSON it writes.
 *
 * <p>{@code clients} logical clients share one Vert.x {@link HttpClient} whose pool holds as many
 * keep-alive HTTP/1.1 connections; each client owns {@code ordersPerClient} orders that no other
 * client touches, so no command ever waits for another client's command. Every client first places
 * each of its orders, then comments on them in turn:
 * <ul>
 *   <li>{@code closed}: each client sends its next command as soon as the previous one is answered,
 *       for {@code warmup + duration} seconds; the answers completed within the last
 *       {@code duration} seconds count;</li>
 *   <li>{@code rate}: the clients together send {@code rate} commands per second on a fixed
 *       schedule; a latency runs from the time the command was <em>due</em>, not from when it left,
 *       so a stalled server is charged for the commands it kept waiting (no coordinated omission);</li>
 *   <li>{@code if-match}: closed loop, each step a {@code GET} of the order and then the comment with
 *       {@code If-Match} set to the ETag it returned.</li>
 * </ul>
 */
public final class LoadGenerator {

  private static final long HIGHEST_MICROS = TimeUnit.SECONDS.toMicros(120);
  private static final byte[] PLACE = ("{\"type\":\"place\",\"payload\":{\"customerEmail\":\"a@b.c\","
      + "\"items\":[{\"sku\":\"x\",\"quantity\":1,\"price\":10}]}}").getBytes(StandardCharsets.UTF_8);
  private static final byte[] COMMENT = "{\"type\":\"comment\",\"payload\":{\"text\":\"a benchmark comment\"}}"
      .getBytes(StandardCharsets.UTF_8);
  private static final int FAILURE_SAMPLES = 5;

  enum Mode { CLOSED, RATE, IF_MATCH }

  record Options(String host, int port, String type, String prefix, int clients, int ordersPerClient, Mode mode,
                 double rate, double warmupSeconds, double durationSeconds, Path out) {

    static Options parse(String[] args) {
      Map<String, String> values = new LinkedHashMap<>();
      for (int i = 0; i < args.length; i += 2) {
        if (!args[i].startsWith("--") || i + 1 >= args.length) {
          throw new IllegalArgumentException("expected --name value pairs, got " + args[i]);
        }
        values.put(args[i].substring(2), args[i + 1]);
      }
      return new Options(values.getOrDefault("host", "127.0.0.1"), Integer.parseInt(values.get("port")),
          values.getOrDefault("type", "orders"), values.get("prefix"),
          Integer.parseInt(values.getOrDefault("clients", "32")),
          Integer.parseInt(values.getOrDefault("orders-per-client", "50")),
          Mode.valueOf(values.getOrDefault("mode", "closed").toUpperCase().replace('-', '_')),
          Double.parseDouble(values.getOrDefault("rate", "0")),
          Double.parseDouble(values.getOrDefault("warmup", "5")),
          Double.parseDouble(values.getOrDefault("duration", "20")),
          Path.of(values.get("out")));
    }
  }

  /** Everything observed in one part of a run (placing the orders, or the measured commands). */
  private static final class Tally {
    final Histogram latency = new ConcurrentHistogram(HIGHEST_MICROS, 3);
    /** Rate mode: from the moment the request left, for comparison with {@link #latency}. */
    final Histogram fromSend = new ConcurrentHistogram(HIGHEST_MICROS, 3);
    /** Rate mode: how long after its due time a command left (the generator's own delay, or a late answer). */
    final Histogram sendDelay = new ConcurrentHistogram(HIGHEST_MICROS, 3);
    /** If-Match mode: the command alone, without the read before it. */
    final Histogram commandOnly = new ConcurrentHistogram(HIGHEST_MICROS, 3);
    final Map<Integer, LongAdder> statuses = new ConcurrentHashMap<>();
    final Map<String, LongAdder> errors = new ConcurrentHashMap<>();
    final List<String> failureSamples = new CopyOnWriteArrayList<>();
    final AtomicLong firstNanos = new AtomicLong(Long.MAX_VALUE);
    final AtomicLong lastNanos = new AtomicLong(Long.MIN_VALUE);

    void status(int status, String body) {
      statuses.computeIfAbsent(status, s -> new LongAdder()).increment();
      if (status != 200 && failureSamples.size() < FAILURE_SAMPLES) {
        failureSamples.add(status + " " + (body.length() > 300 ? body.substring(0, 300) : body));
      }
    }

    void error(Throwable e) {
      errors.computeIfAbsent(e.getClass().getSimpleName(), n -> new LongAdder()).increment();
      if (failureSamples.size() < FAILURE_SAMPLES) {
        failureSamples.add(e.toString());
      }
    }

    void completed(long startNanos, long endNanos) {
      latency.recordValue(Math.max(0, (endNanos - startNanos) / 1000));
      firstNanos.accumulateAndGet(endNanos, Math::min);
      lastNanos.accumulateAndGet(endNanos, Math::max);
    }

    long ok() {
      LongAdder ok = statuses.get(200);
      return ok == null ? 0 : ok.sum();
    }

    long notOk() {
      long all = statuses.values().stream().mapToLong(LongAdder::sum).sum();
      return all - ok() + errors.values().stream().mapToLong(LongAdder::sum).sum();
    }

    Map<String, Object> toJson(double seconds, Mode mode) {
      Map<String, Object> json = new LinkedHashMap<>();
      long requests = latency.getTotalCount();
      json.put("requests", requests);
      json.put("seconds", Report.round(seconds, 3));
      json.put("perSecond", seconds > 0 ? Math.round(requests / seconds) : null);
      Map<String, Long> byStatus = new TreeMap<>();
      statuses.forEach((status, count) -> byStatus.put(Integer.toString(status), count.sum()));
      json.put("statuses", byStatus);
      Map<String, Long> byError = new TreeMap<>();
      errors.forEach((error, count) -> byError.put(error, count.sum()));
      json.put("errors", byError);
      json.put("non200", notOk());
      json.put("latencyMs", percentiles(latency));
      if (mode == Mode.RATE) {
        json.put("latencyFromSendMs", percentiles(fromSend));
        json.put("sendDelayMs", percentiles(sendDelay));
      }
      if (mode == Mode.IF_MATCH) {
        json.put("commandLatencyMs", percentiles(commandOnly));
      }
      json.put("failureSamples", List.copyOf(failureSamples));
      return json;
    }
  }

  static Map<String, Object> percentiles(Histogram histogram) {
    Map<String, Object> json = new LinkedHashMap<>();
    if (histogram.getTotalCount() == 0) {
      return json;
    }
    json.put("p50", ms(histogram.getValueAtPercentile(50)));
    json.put("p90", ms(histogram.getValueAtPercentile(90)));
    json.put("p99", ms(histogram.getValueAtPercentile(99)));
    json.put("p99.9", ms(histogram.getValueAtPercentile(99.9)));
    json.put("max", ms(histogram.getMaxValue()));
    json.put("mean", ms(Math.round(histogram.getMean())));
    return json;
  }

  private static double ms(long micros) {
    return Report.round(micros / 1000.0, 3);
  }

  private final Options options;
  private final Vertx vertx;
  private final HttpClient http;
  private final Tally place = new Tally();
  private final Tally warmup = new Tally();
  private final Tally measured = new Tally();
  /** Rate mode, measured part: commands that were due while the client still waited for its previous answer. */
  private final LongAdder late = new LongAdder();
  private long measureStart;
  private long measureEnd;

  private LoadGenerator(Options options) {
    this.options = options;
    this.vertx = Vertx.vertx();
    this.http = vertx.createHttpClient(
        new HttpClientOptions().setDefaultHost(options.host()).setDefaultPort(options.port()).setKeepAlive(true)
            .setConnectTimeout(10_000),
        new PoolOptions().setHttp1MaxSize(options.clients()));
  }

  public static void main(String[] args) throws Exception {
    Options options = Options.parse(args);
    LoadGenerator generator = new LoadGenerator(options);
    Map<String, Object> result;
    try {
      result = generator.run();
    } finally {
      generator.http.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
      generator.vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }
    Report.writeJson(options.out(), result);
  }

  private Map<String, Object> run() throws InterruptedException {
    long cpuStart = Meter.processCpuNanos();
    long gcStart = Meter.gcMillis();
    List<Context> contexts = new ArrayList<>();
    for (int c = 0; c < options.clients(); c++) {
      contexts.add(vertx.getOrCreateContext());  // spread over the event loops
    }

    // 1. Every client places its orders, one after the other.
    long placeStart = System.nanoTime();
    CountDownLatch placed = new CountDownLatch(options.clients());
    for (int c = 0; c < options.clients(); c++) {
      int client = c;
      contexts.get(c).runOnContext(v -> placeNext(client, 0, placed));
    }
    if (!placed.await(300, TimeUnit.SECONDS)) {
      throw new IllegalStateException("placing the orders took more than 300 s");
    }
    double placeSeconds = (System.nanoTime() - placeStart) / 1e9;

    // 2. The commands, after a warm-up that does not count.
    long start = System.nanoTime();
    measureStart = start + (long) (options.warmupSeconds() * 1e9);
    measureEnd = measureStart + (long) (options.durationSeconds() * 1e9);
    CountDownLatch done = new CountDownLatch(options.clients());
    for (int c = 0; c < options.clients(); c++) {
      int client = c;
      switch (options.mode()) {
        case CLOSED -> contexts.get(c).runOnContext(v -> closedNext(client, 0, done));
        case IF_MATCH -> contexts.get(c).runOnContext(v -> ifMatchNext(client, 0, done));
        case RATE -> {
          // Client c sends at start + (k * clients + c) / rate: together an even stream at the rate.
          long interval = (long) (options.clients() * 1e9 / options.rate());
          long first = start + (long) (c * 1e9 / options.rate());
          contexts.get(c).runOnContext(v -> scheduleNext(client, first, interval, 0, done));
        }
      }
    }
    long waitSeconds = (long) (options.warmupSeconds() + options.durationSeconds()) + 60;
    boolean finished = done.await(waitSeconds, TimeUnit.SECONDS);

    Map<String, Object> result = new LinkedHashMap<>();
    result.put("mode", options.mode().name().toLowerCase().replace('_', '-'));
    result.put("clients", options.clients());
    result.put("ordersPerClient", options.ordersPerClient());
    result.put("connections", options.clients());
    if (options.mode() == Mode.RATE) {
      result.put("targetRate", Report.round(options.rate(), 1));
    }
    result.put("warmupSeconds", options.warmupSeconds());
    result.put("durationSeconds", options.durationSeconds());
    result.put("finished", finished);
    result.put("place", place.toJson(placeSeconds, Mode.CLOSED));
    result.put("placeOk", place.ok());
    result.put("warmupRequests", warmup.latency.getTotalCount());
    result.put("warmupOk", warmup.ok());
    Map<String, Object> commands = measured.toJson(options.durationSeconds(), options.mode());
    if (options.mode() == Mode.RATE) {
      commands.put("answeredAfterNextDue", late.sum());
    }
    result.put("commands", commands);
    // Every 200 is one event appended: the benchmark checks that the fold applied as many.
    result.put("okTotal", place.ok() + warmup.ok() + measured.ok());
    double cpuSeconds = (Meter.processCpuNanos() - cpuStart) / 1e9;
    double wallSeconds = (System.nanoTime() - placeStart) / 1e9;
    Map<String, Object> resources = new LinkedHashMap<>();
    resources.put("generatorJvmCpuSeconds", Report.round(cpuSeconds, 2));
    resources.put("generatorJvmCores", Report.round(cpuSeconds / wallSeconds, 2));
    resources.put("generatorGcMillis", Meter.gcMillis() - gcStart);
    result.put("resources", resources);
    return result;
  }

  private String path(int client, long step) {
    return "/v1/" + options.type() + "/" + order(client, step) + "/commands";
  }

  private String order(int client, long step) {
    return String.format("%s-c%02d-o%03d", options.prefix(), client, step % options.ordersPerClient());
  }

  private Tally tally(long endNanos) {
    return endNanos >= measureStart && endNanos < measureEnd ? measured : warmup;
  }

  private void placeNext(int client, int order, CountDownLatch placed) {
    if (order == options.ordersPerClient()) {
      placed.countDown();
      return;
    }
    long start = System.nanoTime();
    post(path(client, order), PLACE, null).onComplete(answer -> {
      long end = System.nanoTime();
      if (answer.succeeded()) {
        place.status(answer.result().status(), answer.result().body());
        place.completed(start, end);
        placeNext(client, order + 1, placed);
      } else {
        place.error(answer.cause());
        vertx.setTimer(10, id -> placeNext(client, order + 1, placed));
      }
    });
  }

  private void closedNext(int client, long step, CountDownLatch done) {
    long start = System.nanoTime();
    if (start >= measureEnd) {
      done.countDown();
      return;
    }
    post(path(client, step), COMMENT, null).onComplete(answer -> {
      long end = System.nanoTime();
      Tally tally = tally(end);
      if (answer.succeeded()) {
        tally.status(answer.result().status(), answer.result().body());
        tally.completed(start, end);
        closedNext(client, step + 1, done);
      } else {
        tally.error(answer.cause());
        vertx.setTimer(10, id -> closedNext(client, step + 1, done));
      }
    });
  }

  private void ifMatchNext(int client, long step, CountDownLatch done) {
    long start = System.nanoTime();
    if (start >= measureEnd) {
      done.countDown();
      return;
    }
    String order = order(client, step);
    http.request(new RequestOptions().setMethod(HttpMethod.GET).setURI("/v1/" + options.type() + "/" + order)
            .setIdleTimeout(30_000))
        .compose(request -> request.send())
        .compose(response -> response.body().map(body -> new Answer(response.statusCode(), body.toString(),
            response.getHeader("ETag"))))
        .compose(read -> {
          if (read.status() != 200 || read.etag() == null) {
            return Future.succeededFuture(new Timed(read, 0));
          }
          long commandStart = System.nanoTime();
          return post(path(client, step), COMMENT, read.etag()).map(answer -> new Timed(answer, commandStart));
        })
        .onComplete(timed -> {
          long end = System.nanoTime();
          Tally tally = tally(end);
          if (timed.succeeded()) {
            tally.status(timed.result().answer().status(), timed.result().answer().body());
            tally.completed(start, end);
            if (timed.result().commandStart() > 0) {
              tally.commandOnly.recordValue(Math.max(0, (end - timed.result().commandStart()) / 1000));
            }
            ifMatchNext(client, step + 1, done);
          } else {
            tally.error(timed.cause());
            vertx.setTimer(10, id -> ifMatchNext(client, step + 1, done));
          }
        });
  }

  /** Rate mode: waits for the command's due time (unless it is already past), sends it, and schedules the next. */
  private void scheduleNext(int client, long due, long interval, long step, CountDownLatch done) {
    if (due >= measureEnd) {
      done.countDown();
      return;
    }
    long wait = due - System.nanoTime();
    if (wait > 0) {
      vertx.timer(wait, TimeUnit.NANOSECONDS).onSuccess(t -> scheduleNext(client, due, interval, step, done));
      return;
    }
    long sent = System.nanoTime();
    Tally sending = due >= measureStart ? measured : warmup;
    sending.sendDelay.recordValue(Math.max(0, (sent - due) / 1000));
    post(path(client, step), COMMENT, null).onComplete(answer -> {
      long end = System.nanoTime();
      Tally tally = due >= measureStart ? measured : warmup;
      long nextDue = due + interval;
      if (end > nextDue && nextDue >= measureStart && nextDue < measureEnd) {
        late.increment();  // the client's next command is due before this one was answered
      }
      if (answer.succeeded()) {
        tally.status(answer.result().status(), answer.result().body());
      } else {
        tally.error(answer.cause());
      }
      tally.completed(due, end);
      tally.fromSend.recordValue(Math.max(0, (end - sent) / 1000));
      scheduleNext(client, due + interval, interval, step + 1, done);
    });
  }

  private record Answer(int status, String body, String etag) {}

  private record Timed(Answer answer, long commandStart) {}

  private Future<Answer> post(String path, byte[] body, String ifMatch) {
    RequestOptions request = new RequestOptions().setMethod(HttpMethod.POST).setURI(path).setIdleTimeout(30_000)
        .putHeader("content-type", "application/json");
    if (ifMatch != null) {
      request.putHeader("If-Match", ifMatch);
    }
    return http.request(request)
        .compose(r -> r.send(Buffer.buffer(body)))
        .compose(response -> response.body().map(b -> new Answer(response.statusCode(), b.toString(),
            response.getHeader("ETag"))));
  }
}
