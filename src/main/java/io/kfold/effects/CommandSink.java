package io.kfold.effects;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.cluster.Forwarder;
import io.kfold.command.EntityWriter;
import io.kfold.command.EntityWriter.Options;
import io.kfold.effects.EffectConfig.CommandTarget;
import io.kfold.entity.Command;
import io.kfold.types.EntityIds;
import io.kfold.types.Envelopes;
import io.kfold.entity.EffectSink.PermanentFailure;
import io.kfold.entity.KfoldException;
import io.kfold.entity.NewEvent;
import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;

/**
 * A reaction: answers a change with a command to another entity, or with events appended to it,
 * through kfold's own write path, decided by the node that folds the target entity (here, or the
 * node it is forwarded to). The event id is the write's idempotency key, so a re-delivered change
 * never acts twice.
 */
final class CommandSink implements EffectSink {

  private final CommandTarget target;
  private final EntityWriter writer;
  private final Forwarder forwarder;

  CommandSink(CommandTarget target, EntityWriter writer, Forwarder forwarder) {
    this.target = target;
    this.writer = writer;
    this.forwarder = forwarder;
  }

  @Override
  public Future<Void> deliver(Change change) {
    Future<?> written;
    try {
      String id = EntityIds.check(Templates.render(target.id(), change.context()));
      String correlationId = change.json().path("event").path("meta").path("correlationId").asText(null);
      Options options = new Options(OptionalLong.empty(), change.eventId(), correlationId);
      Map<String, String> headers = new HashMap<>();
      headers.put("Idempotency-Key", change.eventId());
      if (correlationId != null) {
        headers.put("X-Correlation-Id", correlationId);
      }
      if (target.command() != null) {
        JsonNode rendered = Templates.renderJson(target.command().path("payload"), change.context());
        ObjectNode payload = rendered.isObject() ? (ObjectNode) rendered : JsonNodeFactory.instance.objectNode();
        Command command = new Command(target.command().path("type").asText(), payload);
        ObjectNode body = JsonNodeFactory.instance.objectNode().put("type", command.type());
        body.set("payload", payload);
        written = forwarder.command(target.entity(), id, Buffer.buffer(Envelopes.toBytes(body)), headers)
            .compose(remote -> remote != null ? Future.succeededFuture()
                : writer.handle(target.entity(), id, command, options));
      } else {
        List<NewEvent> events = new ArrayList<>();
        ObjectNode body = JsonNodeFactory.instance.objectNode();
        ArrayNode list = body.putArray("events");
        for (JsonNode event : target.events()) {
          NewEvent rendered = new NewEvent(Templates.render(event.path("type").asText(), change.context()),
              Templates.renderJson(event.path("payload"), change.context()));
          events.add(rendered);
          list.addObject().put("type", rendered.type()).set("payload", rendered.payload());
        }
        written = forwarder.append(target.entity(), id, Buffer.buffer(Envelopes.toBytes(body)), headers)
            .compose(remote -> remote != null ? Future.succeededFuture() : writer.append(target.entity(), id, events, options));
      }
    } catch (KfoldException e) {
      return Future.failedFuture(new PermanentFailure("reaction to " + change.id() + ": " + e.getMessage()));
    }
    return written.<Void>mapEmpty().recover(e -> {
      boolean permanent = e instanceof KfoldException k && k.status() >= 400 && k.status() < 500 && k.status() != 409;
      return Future.failedFuture(permanent ? new PermanentFailure("reaction to " + change.id() + ": " + e.getMessage()) : e);
    });
  }

  @Override
  public Future<Void> close() {
    forwarder.close();
    return Future.succeededFuture();
  }
}
