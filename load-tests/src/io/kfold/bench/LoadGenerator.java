package io.kfold.bench;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.http.RequestOptions;
import org.HdrHistogram.ConcurrentHistogram;
import org.HdrHistogram.Histogram;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.LockSupport;

/**
 * The HTTP load of the HTTP benchmark, in a JVM of its own so that its CPU, garbage and JIT are not
 * the server's. {@link HttpBenchmark} starts one for the whole run, hands it one phase after the
 * other and reads the JSON it writes for each.
 *
 * <p>{@code clients} logical clients share one Vert.x {@link HttpClient} whose pool holds as many
 * keep-alive HTTP/1.1 connections, all on one event loop. What each request is depends on the workload:
 * <ul>
 *   <li>{@code get}: {@code GET /v1/users/user-<n>} of entities filled before the run; client
 *       {@code c} reads entity {@code (step * clients + c) % entities}, so the clients sweep all of
 *       them;</li>
 *   <li>{@code events}: {@code POST /v1/users/{id}/events} of one event on entities filled before
 *       the run that only this client writes: client {@code c} appends to
 *       {@code user-<k * clients + c>} for {@code k} from 0 to {@code perClient - 1}, in turn;</li>
 *   <li>{@code commands}: a comment on orders that only this client writes ({@code perClient} each,
 *       in turn), after placing each of them first (unless {@code --setup false}: they were placed
 *       by an earlier phase with the same prefix).</li>
 *   <li>{@code order} (the query benchmark): {@code GET /v1/orders/order-<n>} of a random one of
 *       {@code entities} orders;</li>
 *   <li>{@code query} (the query benchmark): {@code GET /v1/orders?customer=c<n>@example.com&limit=50},
 *       the first page of a random one of {@code customers} customers;</li>
 *   <li>{@code row} (the views benchmark): {@code GET /v1/_views/customers/c<n>@example.com}, the
 *       {@code customers} view's row of a random one of {@code customers} customers.</li>
 * </ul>
 * With {@code --ports p1,p2,...} (several nodes of one cluster) client {@code c} sends to port
 * {@code c % ports}: the load is spread evenly over the nodes.
 * No write ever waits for another client's write. The modes:
 * <ul>
 *   <li>{@code closed}: each client sends its next request as soon as the previous one is answered,
 *       for {@code warmup + duration} seconds; the answers completed within the last
 *       {@code duration} seconds count;</li>
 *   <li>{@code rate}: the clients together send {@code rate} requests per second on a fixed
 *       schedule; a latency runs from the time the request was <em>due</em>, not from when it left,
 *       so a stalled server is charged for the requests it kept waiting (no coordinated omission).
 *       The warm-up is a schedule of its own at the same rate, and whatever the generator still owes
 *       at its end is dropped;</li>
 *   <li>{@code if-match} (commands only): closed loop, each step a {@code GET} of the order and then
 *       the comment with {@code If-Match} set to the ETag it returned.</li>
 * </ul>
 */
public final class LoadGenerator {

  private static final long HIGHEST_MICROS = TimeUnit.SECONDS.toMicros(120);
  private static final byte[] PLACE = ("{\"type\":\"place\",\"payload\":{\"customerEmail\":\"a@b.c\","
      + "\"items\":[{\"sku\":\"x\",\"quantity\":1,\"price\":10}]}}").getBytes(StandardCharsets.UTF_8);
  private static final byte[] COMMENT = "{\"type\":\"comment\",\"payload\":{\"text\":\"a benchmark comment\"}}"
      .getBytes(StandardCharsets.UTF_8);
  /** One event of about the size of the fold benchmark's events, merged into a users entity. */
  private static final byte[] EVENT = ("{\"events\":[{\"type\":\"updated\",\"payload\":{\"n\":1,"
      + "\"f1\":\"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghij\"}}]}")
      .getBytes(StandardCharsets.UTF_8);
  private static final int FAILURE_SAMPLES = 5;
  /** The answers of {@code --serve} to a phase: done, its JSON written, or failed. */
  static final String DONE = "@generator done";
  static final String FAILED = "@generator failed";
  /** Rate mode: the pacer wakes at most this often; see {@link #pace}. */
  private static final long TICK_NANOS = TimeUnit.MICROSECONDS.toNanos(500);

  enum Mode { CLOSED, RATE, IF_MATCH }

  /** What a request is; {@code type} is the entity type it goes to. */
  enum Workload {
    GET("users"), EVENTS("users"), COMMANDS("orders"), ORDER("orders"), QUERY("orders"), ROW("_views/customers");

    final String type;

    Workload(String type) {
      this.type = type;
    }

    String option() {
      return name().toLowerCase();
    }
  }

  record Options(String host, int port, Workload workload, String prefix, int clients, int perClient,
                 int entities, boolean setup, Mode mode, double rate, double warmupSeconds, double durationSeconds,
                 Path out, int[] ports, int customers, int limit) {

    static Options parse(String[] args) {
      Map<String, String> values = new LinkedHashMap<>();
      for (int i = 0; i < args.length; i += 2) {
        if (!args[i].startsWith("--") || i + 1 >= args.length) {
          throw new IllegalArgumentException("expected --name value pairs, got " + args[i]);
        }
        values.put(args[i].substring(2), args[i + 1]);
      }
      Options options = new Options(values.getOrDefault("host", "127.0.0.1"), Integer.parseInt(values.get("port")),
          Workload.valueOf(values.getOrDefault("workload", "commands").toUpperCase()), values.get("prefix"),
          Integer.parseInt(values.getOrDefault("clients", "32")),
          Integer.parseInt(values.getOrDefault("per-client", "50")),
          Integer.parseInt(values.getOrDefault("entities", "10000")),
          Boolean.parseBoolean(values.getOrDefault("setup", "true")),
          Mode.valueOf(values.getOrDefault("mode", "closed").toUpperCase().replace('-', '_')),
          Double.parseDouble(values.getOrDefault("rate", "0")),
          Double.parseDouble(values.getOrDefault("warmup", "5")),
          Double.parseDouble(values.getOrDefault("duration", "20")),
          Path.of(values.get("out")),
          Arrays.stream(values.getOrDefault("ports", values.get("port")).split(",")).mapToInt(Integer::parseInt)
              .toArray(),
          Integer.parseInt(values.getOrDefault("customers", "1")),
          Integer.parseInt(values.getOrDefault("limit", "50")));
      if (options.mode() == Mode.IF_MATCH && options.workload() != Workload.COMMANDS) {
        throw new IllegalArgumentException("--mode if-match is for --workload commands only");
      }
      return options;
    }
  }

  /** Everything observed in one part of a run (placing the orders, or the measured requests). */
  private static final class Tally {
    final Histogram latency = new ConcurrentHistogram(HIGHEST_MICROS, 3);
    /** Rate mode: from the moment the request left, for comparison with {@link #latency}. */
    final Histogram fromSend = new ConcurrentHistogram(HIGHEST_MICROS, 3);
    /** Rate mode: how long after its due time a request left (the generator's own delay, or a late answer). */
    final Histogram sendDelay = new ConcurrentHistogram(HIGHEST_MICROS, 3);
    /** If-Match mode: the command alone, without the read before it. */
    final Histogram commandOnly = new ConcurrentHistogram(HIGHEST_MICROS, 3);
    final Map<Integer, LongAdder> statuses = new ConcurrentHashMap<>();
    final Map<String, LongAdder> errors = new ConcurrentHashMap<>();
    final List<String> failureSamples = new CopyOnWriteArrayList<>();

    void status(Answer answer) {
      statuses.computeIfAbsent(answer.status(), s -> new LongAdder()).increment();
      if (answer.status() != 200 && failureSamples.size() < FAILURE_SAMPLES) {
        String body = answer.body().toString();
        failureSamples.add(answer.status() + " " + (body.length() > 300 ? body.substring(0, 300) : body));
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
  /** The event loop of all the clients. */
  private final Context loop;
  private final HttpClient http;
  private final Tally place = new Tally();
  private final Tally warmup = new Tally();
  private final Tally measured = new Tally();
  /** Rate mode, measured part: requests that were due while the client still waited for its previous answer. */
  private final LongAdder late = new LongAdder();
  /** Rate mode: requests of the warm-up still owed at its end, dropped. */
  private final LongAdder dropped = new LongAdder();
  /** Rate mode: the clients, in order. */
  private final List<Paced> paced = new ArrayList<>();
  private volatile long measureStart;
  private volatile long measureEnd;

  private LoadGenerator(Vertx vertx, Context loop, Options options) {
    this.options = options;
    this.vertx = vertx;
    this.loop = loop;
    this.http = vertx.createHttpClient(
        new HttpClientOptions().setDefaultHost(options.host()).setDefaultPort(options.port()).setKeepAlive(true)
            .setConnectTimeout(10_000),
        new PoolOptions().setHttp1MaxSize(options.clients()));
  }

  /**
   * With options, runs one phase and writes its JSON. With {@code --serve}, runs one phase per line
   * read from the standard input (its options, tab-separated) and answers each on the standard
   * output with {@value #DONE} or {@value #FAILED} and the reason, until the input ends: a
   * generator that serves a whole benchmark run meets every phase after the first warm, and does
   * not start a JVM per phase.
   */
  public static void main(String[] args) throws Exception {
    Vertx vertx = Vertx.vertx();
    try {
      Context loop = loopContext(vertx);
      if (args.length == 1 && args[0].equals("--serve")) {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null && !line.isBlank()) {
          String answer;
          try {
            runPhase(vertx, loop, Options.parse(line.split("\t")));
            answer = DONE;
          } catch (Exception e) {
            answer = FAILED + " " + e;
          }
          System.out.println(answer);
          System.out.flush();
        }
      } else {
        runPhase(vertx, loop, Options.parse(args));
      }
    } finally {
      vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }
  }

  private static void runPhase(Vertx vertx, Context loop, Options options) throws Exception {
    LoadGenerator generator = new LoadGenerator(vertx, loop, options);
    Map<String, Object> result;
    try {
      result = generator.run();
    } finally {
      generator.http.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }
    Report.writeJson(options.out(), result);
  }

  /**
   * The context of a verticle that does nothing, on an event loop of its own. All the clients run on
   * it, with the connections they open: requests and answers never cross threads, and the generator
   * takes at most about one core from the server's two.
   */
  private static Context loopContext(Vertx vertx) {
    CompletableFuture<Context> deployed = new CompletableFuture<>();
    vertx.deployVerticle(new VerticleBase() {
      @Override
      public Future<?> start() {
        deployed.complete(context);
        return Future.succeededFuture();
      }
    });
    return deployed.join();
  }

  private Map<String, Object> run() throws InterruptedException {
    long cpuStart = Meter.processCpuNanos();
    long gcStart = Meter.gcMillis();
    long placeStart = System.nanoTime();
    // 1. Commands: every client places its orders, one after the other.
    boolean placing = options.workload() == Workload.COMMANDS && options.setup();
    if (placing) {
      CountDownLatch placed = new CountDownLatch(options.clients());
      for (int c = 0; c < options.clients(); c++) {
        int client = c;
        loop.runOnContext(v -> placeNext(client, 0, placed));
      }
      if (!placed.await(300, TimeUnit.SECONDS)) {
        throw new IllegalStateException("placing the orders took more than 300 s");
      }
    }
    double placeSeconds = (System.nanoTime() - placeStart) / 1e9;

    // 2. The requests, after a warm-up that does not count.
    boolean finished;
    long waitSeconds = (long) (options.warmupSeconds() + options.durationSeconds()) + 60;
    if (options.mode() == Mode.RATE) {
      for (int c = 0; c < options.clients(); c++) {
        paced.add(new Paced(c));
      }
      // The warm-up is a schedule of its own, at the same rate: it warms up the generator's JIT on the
      // code it measures with. A cold generator falls behind its schedule at first; what it still owes
      // at the end of the warm-up is dropped, so that its catching up does not count against the server.
      long warmupStart = System.nanoTime();
      measureStart = warmupStart + (long) (options.warmupSeconds() * 1e9);
      measureEnd = measureStart;  // no due time of the warm-up is measured
      pace(warmupStart, measureStart, true, 60);
      long start = System.nanoTime();
      measureStart = start;
      measureEnd = start + (long) (options.durationSeconds() * 1e9);
      finished = pace(start, measureEnd, false, waitSeconds);
    } else {
      long start = System.nanoTime();
      measureStart = start + (long) (options.warmupSeconds() * 1e9);
      measureEnd = measureStart + (long) (options.durationSeconds() * 1e9);
      CountDownLatch done = new CountDownLatch(options.clients());
      for (int c = 0; c < options.clients(); c++) {
        int client = c;
        loop.runOnContext(v -> {
          if (options.mode() == Mode.CLOSED) {
            closedNext(client, 0, done);
          } else {
            ifMatchNext(client, 0, done);
          }
        });
      }
      finished = done.await(waitSeconds, TimeUnit.SECONDS);
    }

    Map<String, Object> result = new LinkedHashMap<>();
    result.put("workload", options.workload().option());
    result.put("mode", options.mode().name().toLowerCase().replace('_', '-'));
    result.put("clients", options.clients());
    result.put("connections", options.clients());
    if (options.workload() == Workload.QUERY) {
      result.put("customers", options.customers());
      result.put("limit", options.limit());
    } else if (options.workload() == Workload.ROW) {
      result.put("customers", options.customers());
    } else if (options.workload() == Workload.GET || options.workload() == Workload.ORDER) {
      result.put("entities", options.entities());
    } else {
      result.put("entitiesPerClient", options.perClient());
    }
    if (options.mode() == Mode.RATE) {
      result.put("targetRate", Report.round(options.rate(), 1));
    }
    result.put("warmupSeconds", options.warmupSeconds());
    result.put("durationSeconds", options.durationSeconds());
    result.put("finished", finished);
    if (placing) {
      result.put("place", place.toJson(placeSeconds, Mode.CLOSED));
    }
    result.put("warmupRequests", warmup.latency.getTotalCount());
    result.put("warmupOk", warmup.ok());
    Map<String, Object> requests = measured.toJson(options.durationSeconds(), options.mode());
    if (options.mode() == Mode.RATE) {
      requests.put("answeredAfterNextDue", late.sum());
      result.put("warmupBacklogDropped", dropped.sum());
    }
    result.put("requests", requests);
    // For the writes, every 200 is one event appended: the benchmark checks that the fold applied as many.
    result.put("okTotal", place.ok() + warmup.ok() + measured.ok());
    result.put("non200Total", place.notOk() + warmup.notOk() + measured.notOk());
    double cpuSeconds = (Meter.processCpuNanos() - cpuStart) / 1e9;
    double wallSeconds = (System.nanoTime() - placeStart) / 1e9;
    Map<String, Object> resources = new LinkedHashMap<>();
    resources.put("generatorJvmCpuSeconds", Report.round(cpuSeconds, 2));
    resources.put("generatorJvmCores", Report.round(cpuSeconds / wallSeconds, 2));
    resources.put("generatorGcMillis", Meter.gcMillis() - gcStart);
    result.put("resources", resources);
    return result;
  }

  /** The order a command of {@code client} at {@code step} goes to: its own, in turn. */
  private String entity(int client, long step) {
    return String.format("%s-c%03d-e%03d", options.prefix(), client, step % options.perClient());
  }

  private String commandPath(int client, long step) {
    return "/v1/" + options.workload().type + "/" + entity(client, step) + "/commands";
  }

  /** The request of {@code client} at {@code step} in the closed and rate modes. */
  private Future<Answer> request(int client, long step) {
    return switch (options.workload()) {
      case GET -> get("/v1/" + options.workload().type + "/"
          + Input.key((step * options.clients() + client) % options.entities()));
      case EVENTS -> post("/v1/" + options.workload().type + "/"
          + Input.key((step % options.perClient()) * options.clients() + client) + "/events", EVENT, null);
      case COMMANDS -> post(commandPath(client, step), COMMENT, null);
      case ORDER -> get(client, "/v1/" + options.workload().type + "/"
          + OrderInput.key(ThreadLocalRandom.current().nextLong(options.entities())));
      case QUERY -> get(client, "/v1/" + options.workload().type + "?customer="
          + OrderInput.customer(ThreadLocalRandom.current().nextInt(options.customers())) + "&limit=" + options.limit());
      case ROW -> get(client, "/v1/" + options.workload().type + "/"
          + OrderInput.customer(ThreadLocalRandom.current().nextInt(options.customers())));
    };
  }

  private Tally tally(long endNanos) {
    return endNanos >= measureStart && endNanos < measureEnd ? measured : warmup;
  }

  private void placeNext(int client, int order, CountDownLatch placed) {
    if (order == options.perClient()) {
      placed.countDown();
      return;
    }
    long start = System.nanoTime();
    post(commandPath(client, order), PLACE, null).onComplete(answer -> {
      long end = System.nanoTime();
      if (answer.succeeded()) {
        place.status(answer.result());
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
    request(client, step).onComplete(answer -> {
      long end = System.nanoTime();
      Tally tally = tally(end);
      if (answer.succeeded()) {
        tally.status(answer.result());
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
    get("/v1/" + options.workload().type + "/" + entity(client, step))
        .compose(read -> {
          if (read.status() != 200 || read.etag() == null) {
            return Future.succeededFuture(new Timed(read, 0));
          }
          long commandStart = System.nanoTime();
          return post(commandPath(client, step), COMMENT, read.etag()).map(answer -> new Timed(answer, commandStart));
        })
        .onComplete(timed -> {
          long end = System.nanoTime();
          Tally tally = tally(end);
          if (timed.succeeded()) {
            tally.status(timed.result().answer());
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

  /**
   * Rate mode: one schedule from {@code start} to {@code end}, on this thread; answers whether every
   * client was done within {@code waitSeconds} of its end. Request {@code i} is due at
   * {@code start + i / rate} and belongs to client {@code i % clients}, so each client's requests are
   * {@code clients / rate} apart and together they make an even stream at the rate.
   *
   * <p>This thread parks until the next due time; not a Vert.x timer per request: Netty's NIO
   * event loop polls without sleeping for the last half millisecond before a timer, which at the
   * rates of the reads would keep the generator's core busy and take it from the server. It wakes
   * at most once per {@link #TICK_NANOS} and hands what came due to the event loop in one task: a
   * wake-up of the event loop per request would cost the generator more than the request itself. So a
   * request may leave up to one tick after its due time (recorded as {@code sendDelayMs}), and its
   * latency, counted from the due time, includes that wait.
   */
  private boolean pace(long start, long end, boolean dropBacklog, long waitSeconds)
      throws InterruptedException {
    CountDownLatch done = new CountDownLatch(options.clients());
    loop.runOnContext(v -> paced.forEach(client -> client.begin(done)));  // before any due request: one loop, in order
    double nanosPerRequest = 1e9 / options.rate();
    int clients = options.clients();
    long i = 0;
    while (true) {
      long now = System.nanoTime();
      List<long[]> batch = new ArrayList<>();
      long due;
      while ((due = start + (long) (i * nanosPerRequest)) <= now && due < end) {
        batch.add(new long[] {i % clients, due, i / clients});
        i++;
      }
      if (!batch.isEmpty()) {
        loop.runOnContext(v -> batch.forEach(r -> paced.get((int) r[0]).due(r[1], r[2])));
      }
      if (due >= end) {
        break;
      }
      long wake = Math.max(due, now + TICK_NANOS);
      long wait;
      while ((wait = wake - System.nanoTime()) > 0) {
        LockSupport.parkNanos(wait);
      }
    }
    loop.runOnContext(v -> paced.forEach(client -> client.finish(dropBacklog)));
    return done.await(waitSeconds, TimeUnit.SECONDS);
  }

  /**
   * Rate mode: one client, which sends each request when it is due or, if its last request is still
   * unanswered then, as soon as that is answered. Used on the event loop only.
   */
  private final class Paced {
    final int client;
    final long interval;
    /** Due times and steps of the requests that came due while one was in flight. */
    final ArrayDeque<long[]> backlog = new ArrayDeque<>();
    CountDownLatch done;
    boolean busy;
    boolean finishing;

    Paced(int client) {
      this.client = client;
      this.interval = (long) (options.clients() * 1e9 / options.rate());
    }

    /** A schedule starts; {@code done} counts down when it ended and the client is idle. */
    void begin(CountDownLatch done) {
      this.done = done;
      finishing = false;
    }

    void due(long due, long step) {
      if (busy) {
        backlog.add(new long[] {due, step});
      } else {
        send(due, step);
      }
    }

    /** The schedule sends nothing more: done once the backlog is sent, or at once if it is dropped. */
    void finish(boolean dropBacklog) {
      finishing = true;
      if (dropBacklog) {
        dropped.add(backlog.size());
        backlog.clear();
      }
      if (!busy) {
        done.countDown();
      }
    }

    /** Sends at once; the latency runs from the due time, so the wait for a late answer counts. */
    private void send(long due, long step) {
      busy = true;
      long sent = System.nanoTime();
      Tally sending = due >= measureStart ? measured : warmup;
      sending.sendDelay.recordValue(Math.max(0, (sent - due) / 1000));
      request(client, step).onComplete(answer -> {
        long end = System.nanoTime();
        Tally tally = due >= measureStart ? measured : warmup;
        long nextDue = due + interval;
        if (end > nextDue && nextDue >= measureStart && nextDue < measureEnd) {
          late.increment();  // the client's next request is due before this one was answered
        }
        if (answer.succeeded()) {
          tally.status(answer.result());
        } else {
          tally.error(answer.cause());
        }
        tally.completed(due, end);
        tally.fromSend.recordValue(Math.max(0, (end - sent) / 1000));
        busy = false;
        long[] next = backlog.poll();
        if (next != null) {
          send(next[0], next[1]);
        } else if (finishing) {
          done.countDown();
        }
      });
    }
  }

  /** An answer, whose body is read to its end (the latency includes it) but only decoded for a failure sample. */
  private record Answer(int status, Buffer body, String etag) {}

  private record Timed(Answer answer, long commandStart) {}

  private Future<Answer> get(String path) {
    return send(new RequestOptions().setMethod(HttpMethod.GET).setURI(path).setIdleTimeout(30_000), null);
  }

  /** A read by {@code client}, to its node when there are several. */
  private Future<Answer> get(int client, String path) {
    int[] ports = options.ports();
    return send(new RequestOptions().setMethod(HttpMethod.GET).setPort(ports[client % ports.length]).setURI(path)
        .setIdleTimeout(30_000), null);
  }

  private Future<Answer> post(String path, byte[] body, String ifMatch) {
    RequestOptions request = new RequestOptions().setMethod(HttpMethod.POST).setURI(path).setIdleTimeout(30_000)
        .putHeader("content-type", "application/json");
    if (ifMatch != null) {
      request.putHeader("If-Match", ifMatch);
    }
    return send(request, Buffer.buffer(body));
  }

  private Future<Answer> send(RequestOptions options, Buffer body) {
    return http.request(options)
        .compose(r -> body == null ? r.send() : r.send(body))
        .compose(response -> response.body().map(b -> new Answer(response.statusCode(), b,
            response.getHeader("ETag"))));
  }
}
