package io.kfold.effects;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * One record of a changes topic: an accepted event with the state after it.
 *
 * @param id      {@code <key>:<version>}, the same for every delivery of the change
 * @param json    the change record as published: {@code {id, event, state}}
 * @param context what templates can name (see {@link Templates})
 */
record Change(String id, String entity, String key, long version, String eventId, String eventType, JsonNode json,
              ObjectNode context) {

  static Change of(JsonNode json) {
    JsonNode event = json.path("event");
    if (!json.path("id").isTextual() || !event.path("key").isTextual() || !event.path("version").canConvertToLong()) {
      throw new IllegalArgumentException("not a change record: it needs id, event.key and event.version");
    }
    return new Change(json.path("id").asText(), event.path("entity").asText(), event.path("key").asText(),
        event.path("version").asLong(), event.path("id").asText(), event.path("type").asText(), json,
        Templates.context(json));
  }

  JsonNode state() {
    return json.path("state");
  }
}
