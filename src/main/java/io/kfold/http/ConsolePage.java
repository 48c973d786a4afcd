package io.kfold.http;

import io.kfold.entity.KfoldException;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.ext.web.RoutingContext;

import java.io.IOException;
import java.io.InputStream;
import java.util.Map;

/**
 * The operators' console: one page and its script and style, served from the jar's resources
 * ({@code /console/…}). The page holds no data: its script reads the JSON API with the caller's
 * credentials, so it is open like {@code /openapi.yaml}, and the API's checks apply to every call
 * it makes. The files are read once, at start.
 */
final class ConsolePage {

  private static final Map<String, String> FILES = Map.of(
      "index.html", "text/html; charset=utf-8",
      "console.js", "text/javascript; charset=utf-8",
      "console.css", "text/css; charset=utf-8");
  /**
   * Scripts and styles from this node only, no inline script, no framing: data the page shows can
   * never run as code, even if an escape were missed.
   */
  private static final String POLICY = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
      + " connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

  private final Map<String, Buffer> files;

  private ConsolePage(Map<String, Buffer> files) {
    this.files = files;
  }

  /** Reads the console's files on a worker thread. */
  static Future<ConsolePage> load(Vertx vertx) {
    return vertx.executeBlocking(() -> {
      Map<String, Buffer> read = new java.util.HashMap<>();
      for (String name : FILES.keySet()) {
        try (InputStream in = ConsolePage.class.getResourceAsStream("/console/" + name)) {
          if (in == null) {
            throw new IOException("the console's file " + name + " is missing from the resources");
          }
          read.put(name, Buffer.buffer(in.readAllBytes()));
        }
      }
      return new ConsolePage(Map.copyOf(read));
    });
  }

  /** {@code GET /console}. */
  void page(RoutingContext ctx) {
    send(ctx, "index.html");
  }

  /** {@code GET /console/{file}}: the page's script and style (and the page itself). */
  void file(RoutingContext ctx) {
    String name = ctx.pathParam("file");
    if (!files.containsKey(name)) {
      throw KfoldException.notFound("the console has no file '" + name + "'");
    }
    send(ctx, name);
  }

  private void send(RoutingContext ctx, String name) {
    ctx.response()
        .putHeader("content-type", FILES.get(name))
        .putHeader("cache-control", "no-cache")
        .putHeader("x-content-type-options", "nosniff")
        .putHeader("content-security-policy", POLICY)
        .end(files.get(name));
  }
}
