package io.kfold.http;

import io.kfold.config.NodeConfig;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.net.ServerSSLOptions;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Objects;
import java.util.concurrent.atomic.LongAdder;

/**
 * Reads the HTTP API's certificate and key files again every {@code http.tls.reloadCheckMs}, and
 * when they hold a new valid pair (a renewed certificate) gives it to the server for the connections
 * that come after. Files that do not form a pair, as while they are being written, leave the old
 * certificate in place: the next check tries again.
 */
final class CertificateReloader {

  private static final Logger LOG = LoggerFactory.getLogger(CertificateReloader.class);

  private final Vertx vertx;
  private final HttpServer server;
  private final ServerSSLOptions sslOptions;
  private final NodeConfig.Tls tls;
  private final long timer;
  private final LongAdder reloads = new LongAdder();
  private final LongAdder failures = new LongAdder();
  /** What the server serves now; touched on the verticle's context only. */
  private ServerCertificate current;
  /** A check is running: the next tick leaves it alone rather than run a second one beside it. */
  private boolean checking;
  /** The last failure logged, so that files that stay broken are logged once, not at every check. */
  private String lastProblem;

  /**
   * @param sslOptions the server's TLS options, of which a reload replaces the key and certificate only
   */
  CertificateReloader(Vertx vertx, HttpServer server, ServerSSLOptions sslOptions, NodeConfig.Tls tls,
                      ServerCertificate current) {
    this.vertx = vertx;
    this.server = server;
    this.sslOptions = sslOptions;
    this.tls = tls;
    this.current = current;
    this.timer = vertx.setPeriodic(tls.reloadCheckMs(), id -> check());
  }

  private void check() {
    if (checking) {
      return;
    }
    checking = true;
    ServerCertificate serving = current;
    vertx.executeBlocking(() -> ServerCertificate.readIfChanged(vertx, tls, serving), false)
        .compose(next -> next == null ? Future.<Void>succeededFuture() : server.updateSSLOptions(
            sslOptions.copy().setKeyCertOptions(next.options()), true).<Void>map(updated -> {
              current = next;
              reloads.increment();
              lastProblem = null;
              LOG.info("HTTP API certificate reloaded from {}: {}", tls.certificate(), next.describe());
              return null;
            }))
        .onFailure(e -> {
          failures.increment();
          String problem = e.getMessage();
          if (!Objects.equals(problem, lastProblem)) {
            lastProblem = problem;
            LOG.warn("HTTP API certificate not reloaded, still serving {}: {} (tried again every {} ms)",
                current.describe(), problem, tls.reloadCheckMs());
          }
        })
        .onComplete(done -> checking = false);
  }

  /** Certificates taken since the start. */
  long reloads() {
    return reloads.sum();
  }

  /** Checks that found changed files the server could not take (the old certificate kept). */
  long failures() {
    return failures.sum();
  }

  void stop() {
    vertx.cancelTimer(timer);
  }
}
