package io.kfold.http;

import io.kfold.entity.KfoldException;
import io.vertx.core.Handler;
import io.vertx.ext.web.Route;
import io.vertx.ext.web.RoutingContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Supplier;

/**
 * The first handler of every request: gives it a correlation id and, when switched on, writes its
 * access-log line once the response has gone.
 *
 * <p>The correlation id is the caller's {@code X-Correlation-Id} (printable ASCII, at most 128
 * characters, else 400) or a new UUID. It is set on the request itself, so that the write's events
 * carry it in {@code meta.correlationId} and a request forwarded to another node takes it along, and
 * it is answered in the response's header.
 *
 * <p>The access log ({@code io.kfold.access}, INFO) has one line per request: method, route template
 * (the entity ids are in the path, which the line also has; never the query string or headers,
 * where secrets may be), status, duration, correlation id and node.
 */
final class RequestLog implements Handler<RoutingContext> {

  static final String CORRELATION_ID = "X-Correlation-Id";
  static final int MAX_CORRELATION_ID = 128;
  private static final Logger ACCESS = LoggerFactory.getLogger("io.kfold.access");

  private final boolean accessLog;
  private final Supplier<String> node;

  RequestLog(boolean accessLog, Supplier<String> node) {
    this.accessLog = accessLog;
    this.node = node;
  }

  @Override
  public void handle(RoutingContext ctx) {
    long start = System.nanoTime();
    String given = ctx.request().getHeader(CORRELATION_ID);
    boolean valid = given == null || valid(given);
    String id = given == null ? newId() : given;
    if (accessLog && ACCESS.isInfoEnabled()) {
      ctx.addEndHandler(ended -> ACCESS.info("{} {} {} {} {} ms correlationId={} node={}", ctx.request().method(),
          template(ctx), ctx.request().path(), ctx.response().getStatusCode(),
          String.format("%.2f", (System.nanoTime() - start) / 1e6), valid ? id : "-", node.get()));
    }
    if (!valid) {
      ctx.fail(KfoldException.badRequest(CORRELATION_ID + " must be printable ASCII of 1 to " + MAX_CORRELATION_ID
          + " characters"));
      return;
    }
    if (given == null) {
      ctx.request().headers().set(CORRELATION_ID, id);
    }
    ctx.response().putHeader(CORRELATION_ID, id);
    ctx.next();
  }

  /**
   * A random (version 4) UUID from the thread's own generator: a correlation id needs to be unique,
   * not unguessable, and UUID.randomUUID's shared SecureRandom would cost every request a lock.
   */
  static String newId() {
    ThreadLocalRandom random = ThreadLocalRandom.current();
    return new UUID(random.nextLong() & ~0xF000L | 0x4000L,
        random.nextLong() & 0x3FFFFFFFFFFFFFFFL | 0x8000000000000000L).toString();
  }

  static boolean valid(String id) {
    if (id.isEmpty() || id.length() > MAX_CORRELATION_ID) {
      return false;
    }
    for (int i = 0; i < id.length(); i++) {
      char c = id.charAt(i);
      if (c < 0x21 || c > 0x7e) {
        return false;
      }
    }
    return true;
  }

  /**
   * The path of the route that answered, such as {@code /v1/:type/:id}. A failure is answered by the
   * failure handler, whose route has no path: the template is then rebuilt from the path, each
   * segment that is a path parameter's value named after the parameter; "-" when no route matched.
   */
  static String template(RoutingContext ctx) {
    Route route = ctx.currentRoute();
    if (route != null && route.getPath() != null) {
      return route.getPath();
    }
    Map<String, String> params = ctx.pathParams();
    if (params.isEmpty()) {
      return ctx.response().getStatusCode() == 404 ? "-" : ctx.request().path();
    }
    StringBuilder template = new StringBuilder();
    Set<String> used = new HashSet<>();
    for (String segment : ctx.request().path().split("/", -1)) {
      if (template.length() > 0 || !segment.isEmpty()) {
        template.append('/');
      }
      String name = null;
      for (Map.Entry<String, String> param : params.entrySet()) {
        if (!used.contains(param.getKey()) && param.getValue().equals(segment)) {
          name = param.getKey();
          break;
        }
      }
      if (name != null) {
        used.add(name);
        template.append(':').append(name);
      } else {
        template.append(segment);
      }
    }
    return template.toString();
  }
}
