package io.kfold.effects;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.command.EntityWriter;
import io.kfold.command.EntityWriter.Options;
import io.kfold.effects.EffectConfig.CommandTarget;
import io.kfold.entity.Command;
import io.kfold.entity.EntityIds;
import io.kfold.entity.KfoldException;
import io.kfold.entity.NewEvent;
import io.vertx.core.Future;

import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;

/**
 * A reaction: answers a change with a command to another entity, or with events appended to it,
 * through kfold's own write path. The event id is the write's idempotency key, so a re-delivered
 * change never acts twice.
 */
final class CommandSink implements EffectSink {

  private final CommandTarget target;
  private final EntityWriter writer;

  CommandSink(CommandTarget target, EntityWriter writer) {
    this.target = target;
    this.writer = writer;
  }

  @Override
  public Future<Void> deliver(Change change) {
    Future<EntityWriter.Written> written;
    try {
      String id = EntityIds.check(Templates.render(target.id(), change.context()));
      Options options = new Options(OptionalLong.empty(), change.eventId(),
          change.json().path("event").path("meta").path("correlationId").asText(null));
      if (target.command() != null) {
        JsonNode payload = Templates.renderJson(target.command().path("payload"), change.context());
        written = writer.handle(target.entity(), id, new Command(target.command().path("type").asText(),
            payload.isObject() ? payload : com.fasterxml.jackson.databind.node.JsonNodeFactory.instance.objectNode()), options);
      } else {
        List<NewEvent> events = new ArrayList<>();
        for (JsonNode event : target.events()) {
          events.add(new NewEvent(Templates.render(event.path("type").asText(), change.context()),
              Templates.renderJson(event.path("payload"), change.context())));
        }
        written = writer.append(target.entity(), id, events, options);
      }
    } catch (KfoldException e) {
      return Future.failedFuture(new PermanentFailure("reaction to " + change.id() + ": " + e.getMessage()));
    }
    return written.<Void>mapEmpty().recover(e -> {
      boolean permanent = e instanceof KfoldException k && k.status() >= 400 && k.status() < 500 && k.status() != 409;
      return Future.failedFuture(permanent ? new PermanentFailure("reaction to " + change.id() + ": " + e.getMessage()) : e);
    });
  }
}
