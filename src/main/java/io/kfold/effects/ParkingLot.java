package io.kfold.effects;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The events a worker has dead-lettered, by entity. An entity with an unresolved dead letter is
 * parked: its later events are parked behind it, in order, until the dead letter is replayed or
 * skipped. The worker's dead-letter topic holds all of it ({@code dead-letter}, {@code parked} and
 * {@code resolved} records), so the lot is rebuilt from the topic on start.
 */
final class ParkingLot {

  /** One parked change; {@code error} and {@code attempts} are set for the dead letter at the head. */
  record Entry(String id, JsonNode change, String error, int attempts) {}

  private final Map<EntityRef, List<Entry>> byEntity = new LinkedHashMap<>();

  boolean isParked(EntityRef entity) {
    return byEntity.containsKey(entity);
  }

  /** The id of the change that parked the entity. */
  String head(EntityRef entity) {
    return byEntity.get(entity).get(0).id();
  }

  List<Entry> entries(EntityRef entity) {
    return List.copyOf(byEntity.getOrDefault(entity, List.of()));
  }

  /** The parked entities with this id, of any type. */
  List<EntityRef> withKey(String key) {
    return byEntity.keySet().stream().filter(entity -> entity.key().equals(key)).toList();
  }

  int size() {
    return byEntity.values().stream().mapToInt(List::size).sum();
  }

  /**
   * Applies one record of the dead-letter topic. The entity comes from the record's body; records
   * written before entities were told apart by type have only their id as {@code recordKey}, and
   * their {@code resolved} records name no type: those resolve the changes of every type with that id.
   */
  void apply(String recordKey, JsonNode record) {
    switch (record.path("kind").asText()) {
      case "dead-letter", "parked" -> {
        JsonNode event = record.path("change").path("event");
        EntityRef entity = new EntityRef(event.path("entity").asText(), event.path("key").asText());
        byEntity.computeIfAbsent(entity, k -> new ArrayList<>()).add(new Entry(
            record.path("change").path("id").asText(), record.path("change"), record.path("error").asText(null),
            record.path("attempts").asInt()));
      }
      case "resolved" -> {
        Set<String> ids = new HashSet<>();
        record.path("ids").forEach(id -> ids.add(id.asText()));
        List<EntityRef> entities = record.hasNonNull("entity")
            ? List.of(new EntityRef(record.path("entity").asText(), record.path("key").asText()))
            : withKey(recordKey);
        for (EntityRef entity : entities) {
          List<Entry> entries = byEntity.get(entity);
          if (entries != null) {
            entries.removeIf(e -> ids.contains(e.id()));
            if (entries.isEmpty()) {
              byEntity.remove(entity);
            }
          }
        }
      }
      default -> {
        // a record this version does not know: ignore it
      }
    }
  }

  static ObjectNode deadLetter(String worker, Change change, String error, int attempts) {
    ObjectNode record = JsonNodeFactory.instance.objectNode();
    record.put("kind", "dead-letter").put("worker", worker).put("error", error).put("attempts", attempts);
    record.set("change", change.json());
    return record;
  }

  static ObjectNode parked(String worker, Change change, String behind) {
    ObjectNode record = JsonNodeFactory.instance.objectNode();
    record.put("kind", "parked").put("worker", worker).put("behind", behind);
    record.set("change", change.json());
    return record;
  }

  static ObjectNode resolved(String worker, EntityRef entity, List<String> ids, String how) {
    ObjectNode record = JsonNodeFactory.instance.objectNode();
    record.put("kind", "resolved").put("worker", worker).put("entity", entity.type()).put("key", entity.key())
        .put("how", how);
    ArrayNode list = record.putArray("ids");
    ids.forEach(list::add);
    return record;
  }

  /** The lot as the HTTP API lists it. */
  ObjectNode toJson() {
    ObjectNode json = JsonNodeFactory.instance.objectNode();
    ArrayNode keys = json.putArray("parked");
    byEntity.forEach((ref, entries) -> {
      ObjectNode entity = keys.addObject().put("type", ref.type()).put("key", ref.key());
      ArrayNode list = entity.putArray("events");
      for (Entry entry : entries) {
        ObjectNode item = list.addObject().put("id", entry.id());
        item.put("type", entry.change().path("event").path("type").asText());
        if (entry.error() != null) {
          item.put("error", entry.error()).put("attempts", entry.attempts());
        }
      }
    });
    return json;
  }
}
