package io.kfold.entity;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * One event as it travels in the log.
 *
 * @param id      unique id (a UUID when kfold wrote it)
 * @param type    the event's type in the domain, such as {@code OrderPlaced}
 * @param entity  the entity type's name
 * @param key     the entity id, also the Kafka record key
 * @param version 1-based position in the entity's history; {@link #NO_VERSION} when an outside
 *                producer left it out, in which case the fold assigns the next one
 * @param time    ISO-8601 instant of the append
 * @param payload the event's data
 * @param meta    {@code commandId}, {@code correlationId}, {@code index} (position of the event
 *                among the events of its command), and {@code idempotencyKey} when the caller gave one
 */
public record Envelope(String id, String type, String entity, String key, long version, String time,
                       JsonNode payload, ObjectNode meta) {

  public static final long NO_VERSION = 0;

  public Envelope withVersion(long newVersion) {
    return new Envelope(id, type, entity, key, newVersion, time, payload, meta);
  }

  /** The command this event came from, or null for events written without one. */
  public String commandId() {
    JsonNode value = meta == null ? null : meta.get("commandId");
    return value == null || !value.isTextual() ? null : value.asText();
  }

  /** The caller's idempotency key of the write that appended this event, or null. */
  public String idempotencyKey() {
    JsonNode value = meta == null ? null : meta.get("idempotencyKey");
    return value == null || !value.isTextual() ? null : value.asText();
  }

  /** Position of the event among the events of its command; 0 for the first or only one. */
  public int indexInCommand() {
    return meta == null ? 0 : meta.path("index").asInt(0);
  }
}
