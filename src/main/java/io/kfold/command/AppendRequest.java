package io.kfold.command;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.entity.KfoldException;
import io.kfold.entity.NewEvent;

import java.util.ArrayList;
import java.util.List;

/** The body of an append, {@code {"events": [{"type", "payload"}…]}}, checked the same way over HTTP and the event bus. */
public final class AppendRequest {

  private AppendRequest() {}

  /** The events of the body, or a 400 that says what is wrong with it. */
  public static List<NewEvent> events(JsonNode body, int maxEvents) {
    JsonNode events = body.path("events");
    if (!events.isArray() || events.isEmpty()) {
      throw KfoldException.badRequest("the body must be {\"events\": [{\"type\": ..., \"payload\": {...}}, ...]}"
          + " with at least one event");
    }
    if (events.size() > maxEvents) {
      throw KfoldException.badRequest("at most " + maxEvents + " events per append, got " + events.size());
    }
    List<NewEvent> result = new ArrayList<>(events.size());
    for (int i = 0; i < events.size(); i++) {
      JsonNode event = events.get(i);
      JsonNode type = event.path("type");
      if (!type.isTextual() || type.asText().isBlank() || type.asText().length() > 128) {
        throw KfoldException.badRequest("events[" + i + "].type must be a non-empty string of at most 128 characters");
      }
      if (!event.path("payload").isObject()) {
        throw KfoldException.badRequest("events[" + i + "].payload must be a JSON object");
      }
      result.add(new NewEvent(type.asText(), event.get("payload")));
    }
    return result;
  }
}
