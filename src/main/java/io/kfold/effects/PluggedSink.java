package io.kfold.effects;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vertx.core.Future;

import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A worker's sink that is the application's own {@link io.kfold.entity.EffectSink}: hands it each
 * change in the public form. Closes it with the worker only if kfold created it (from
 * {@code class:}); a sink registered in code belongs to the application, which may use it elsewhere.
 */
final class PluggedSink implements EffectSink {

  private final io.kfold.entity.EffectSink sink;
  private final boolean owned;
  /** Closed once: by its worker when it stops, or by a start that failed before the worker ran. */
  private final AtomicBoolean closed = new AtomicBoolean();

  PluggedSink(io.kfold.entity.EffectSink sink, boolean owned) {
    this.sink = sink;
    this.owned = owned;
  }

  @Override
  public Future<Void> deliver(Change change) {
    Future<Void> delivered = sink.deliver(toPublic(change));
    return delivered != null ? delivered
        : Future.failedFuture(new IllegalStateException(sink.getClass().getName() + ".deliver answered null"));
  }

  @Override
  public Future<Void> close() {
    return owned && closed.compareAndSet(false, true) ? sink.close() : Future.succeededFuture();
  }

  /** A copy for each delivery: a sink that changes its JSON changes nothing of a retry's or a replay's. */
  static io.kfold.entity.Change toPublic(Change change) {
    JsonNode event = change.json().path("event");
    JsonNode meta = event.path("meta");
    ObjectNode metaCopy = meta.isObject() ? ((ObjectNode) meta).deepCopy() : JsonNodeFactory.instance.objectNode();
    return new io.kfold.entity.Change(change.entity(), change.key(), change.version(), change.eventId(),
        change.eventType(), time(event.path("time").asText()), event.path("payload").deepCopy(),
        change.state().deepCopy(), meta.path("correlationId").isTextual() ? meta.get("correlationId").asText() : null,
        metaCopy);
  }

  /** The event's time; null for an event an outside producer wrote without a readable one. */
  private static Instant time(String text) {
    try {
      return Instant.parse(text);
    } catch (DateTimeParseException e) {
      return null;
    }
  }
}
