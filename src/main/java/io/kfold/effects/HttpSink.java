package io.kfold.effects;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.effects.EffectConfig.HttpTarget;
import io.kfold.types.Envelopes;
import io.kfold.entity.EffectSink.PermanentFailure;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.PoolOptions;
import io.vertx.ext.web.client.WebClient;
import io.vertx.ext.web.client.WebClientOptions;

/**
 * Calls a REST endpoint for each change, with an {@code Idempotency-Key} header equal to the event
 * id so that the target can apply a re-delivered event once. 2xx succeeds; 408, 429, 5xx, resets and
 * timeouts are retried; any other 4xx is permanent. The event's {@code meta.correlationId} goes
 * along as {@code X-Correlation-Id}.
 */
final class HttpSink implements EffectSink {

  private final HttpTarget target;
  private final WebClient client;
  private final long timeoutMs;

  /** @param connections as many as the worker has entities in flight, or the pool would queue them */
  HttpSink(Vertx vertx, HttpTarget target, long timeoutMs, int connections) {
    this.target = target;
    this.timeoutMs = timeoutMs;
    this.client = WebClient.create(vertx, new WebClientOptions().setConnectTimeout((int) Math.min(timeoutMs, 10_000)),
        new PoolOptions().setHttp1MaxSize(connections));
  }

  @Override
  public Future<Void> deliver(Change change) {
    JsonNode body = target.body().isNull() ? change.json() : Templates.renderJson(target.body(), change.context());
    String url = Templates.render(target.url(), change.context());
    var request = client.requestAbs(HttpMethod.valueOf(target.method()), url)
        .putHeader("Idempotency-Key", change.eventId())
        .putHeader("content-type", "application/json");
    // The write's correlation id goes on to the target, so that its logs can be joined with kfold's.
    String correlationId = change.json().path("event").path("meta").path("correlationId").asText(null);
    if (correlationId != null) {
      request.putHeader("X-Correlation-Id", correlationId);
    }
    return request
        .timeout(timeoutMs)
        .sendBuffer(Buffer.buffer(Envelopes.toBytes(body)))
        .compose(response -> {
          int status = response.statusCode();
          if (status >= 200 && status < 300) {
            return Future.succeededFuture();
          }
          String failure = target.method() + " " + url + " answered " + status;
          boolean retryable = status == 408 || status == 429 || status >= 500;
          return Future.failedFuture(retryable ? new IllegalStateException(failure) : new PermanentFailure(failure));
        });
  }

  @Override
  public Future<Void> close() {
    client.close();
    return Future.succeededFuture();
  }
}
