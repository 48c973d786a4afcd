package io.kfold.entity;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.time.Instant;

/**
 * One change, as an {@link EffectSink} gets it: an accepted event of an entity and the entity's
 * state after it. Each delivery gets its own copy of the JSON, which the sink may change.
 *
 * @param entity        the entity type's name
 * @param key           the entity id
 * @param version       the event's version, 1-based, one more for each event of the entity
 * @param eventId       the event's id: the same for every delivery of this change, an idempotency key
 * @param eventType     the event's type in the domain, such as {@code OrderPlaced}
 * @param time          when the event was appended
 * @param payload       the event's data
 * @param state         the entity's state after the event
 * @param correlationId the correlation id of the write that appended the event, or null
 * @param meta          the rest of what the event carries: {@code commandId}, {@code principal}...
 */
public record Change(String entity, String key, long version, String eventId, String eventType, Instant time,
                     JsonNode payload, JsonNode state, String correlationId, ObjectNode meta) {

  /** {@code <key>:<version>}, as the worker's dead letters and parked events name the change. */
  public String changeId() {
    return key + ":" + version;
  }
}
