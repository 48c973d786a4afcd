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
import java.util.Optional;
import java.util.Set;
import java.util.function.Predicate;

/**
 * The changes a worker has dead-lettered, by entity, as its dead-letter topic says. An entity with
 * an unresolved dead letter is parked: its later changes are parked behind it, in order, until the
 * dead letter is replayed or skipped. The topic holds all of it, in order: {@code dead-letter} and
 * {@code parked} records, {@code replay-requested} and {@code skip-requested} records from any node,
 * and the {@code resolved} record of each request, written by the node that delivers the entity.
 * Every node folds the topic into a lot of its own, and they agree at each offset.
 */
final class ParkingLot {

  /** One parked change; {@code error} and {@code attempts} are set for a dead letter. */
  record Entry(String id, JsonNode change, String error, int attempts) {}

  /** A replay or skip asked for on some node, waiting for the node that delivers its entity. */
  record Request(String id, EntityRef entity, boolean skip) {}

  /** What a record meant for a request: one to carry out, or an answer for the node that asked. */
  sealed interface Applied permits Requested, Resolved, NotParked {}

  /** The entity is parked: the node that delivers its changes carries the request out. */
  record Requested(Request request) implements Applied {}

  /** Carried out: {@code result} is the answer, as the HTTP API gives it. */
  record Resolved(String request, ObjectNode result) implements Applied {}

  /** Nothing of the entity was parked when the request was read. */
  record NotParked(String request, EntityRef entity) implements Applied {}

  private final Map<EntityRef, List<Entry>> byEntity = new LinkedHashMap<>();
  private final Map<String, Request> pending = new LinkedHashMap<>();
  /** How many entities are parked, for the metrics, read off the worker's thread. */
  private volatile int entities;

  int entities() {
    return entities;
  }

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

  /** The requests not carried out yet whose entity matches. */
  List<Request> pending(Predicate<EntityRef> entities) {
    return pending.values().stream().filter(request -> entities.test(request.entity())).toList();
  }

  int size() {
    return byEntity.values().stream().mapToInt(List::size).sum();
  }

  /**
   * Applies one record of the dead-letter topic. The entity comes from the record's body; records
   * written before entities were told apart by type have only the id as {@code recordKey}, and their
   * {@code resolved} records name no type: those resolve the changes of that id in every type.
   */
  Optional<Applied> apply(String recordKey, JsonNode record) {
    try {
      return applied(recordKey, record);
    } finally {
      entities = byEntity.size();
    }
  }

  private Optional<Applied> applied(String recordKey, JsonNode record) {
    switch (record.path("kind").asText()) {
      case "dead-letter", "parked" -> {
        JsonNode change = record.path("change");
        EntityRef entity = new EntityRef(change.path("event").path("entity").asText(),
            change.path("event").path("key").asText());
        byEntity.computeIfAbsent(entity, e -> new ArrayList<>()).add(new Entry(change.path("id").asText(), change,
            record.path("error").asText(null), record.path("attempts").asInt()));
      }
      case "replay-requested", "skip-requested" -> {
        Request request = new Request(record.path("request").asText(), entityOf(record),
            record.path("kind").asText().equals("skip-requested"));
        if (!isParked(request.entity())) {
          return Optional.of(new NotParked(request.id(), request.entity()));
        }
        pending.put(request.id(), request);
        return Optional.of(new Requested(request));
      }
      case "resolved" -> {
        Set<String> ids = new HashSet<>();
        for (String field : List.of("ids", "skipped", "replayed")) {
          record.path(field).forEach(id -> ids.add(id.asText()));
        }
        List<EntityRef> entities = record.hasNonNull("entity") ? List.of(entityOf(record)) : withKey(recordKey);
        entities.forEach(entity -> release(entity, ids));
        String request = record.path("request").asText(null);
        if (request != null && pending.remove(request) != null) {
          return Optional.of(new Resolved(request, result(entityOf(record), record)));
        }
      }
      default -> {
        // a record this version does not know: ignore it
      }
    }
    return Optional.empty();
  }

  private void release(EntityRef entity, Set<String> ids) {
    List<Entry> entries = byEntity.get(entity);
    if (entries != null) {
      entries.removeIf(e -> ids.contains(e.id()));
      if (entries.isEmpty()) {
        byEntity.remove(entity);
      }
    }
  }

  private ObjectNode result(EntityRef entity, JsonNode resolved) {
    ObjectNode result = JsonNodeFactory.instance.objectNode().put("type", entity.type()).put("key", entity.key())
        .put("replayed", resolved.path("replayed").size()).put("skipped", resolved.path("skipped").size())
        .put("stillParked", entries(entity).size());
    if (resolved.hasNonNull("error")) {
      result.put("error", resolved.path("error").asText());
    }
    return result;
  }

  private static EntityRef entityOf(JsonNode record) {
    return new EntityRef(record.path("entity").asText(), record.path("key").asText());
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

  static ObjectNode requested(String worker, Request request) {
    return JsonNodeFactory.instance.objectNode().put("kind", request.skip() ? "skip-requested" : "replay-requested")
        .put("worker", worker).put("request", request.id())
        .put("entity", request.entity().type()).put("key", request.entity().key());
  }

  /** The outcome of a request: what was skipped and replayed, and the error that stopped the replay, if one did. */
  static ObjectNode resolved(String worker, Request request, List<String> skipped, List<String> replayed, String error) {
    ObjectNode record = JsonNodeFactory.instance.objectNode().put("kind", "resolved").put("worker", worker)
        .put("request", request.id()).put("entity", request.entity().type()).put("key", request.entity().key());
    skipped.forEach(record.putArray("skipped")::add);
    replayed.forEach(record.putArray("replayed")::add);
    if (error != null) {
      record.put("error", error);
    }
    return record;
  }

  /** The lot as the HTTP API lists it. */
  ObjectNode toJson() {
    ObjectNode json = JsonNodeFactory.instance.objectNode();
    ArrayNode list = json.putArray("parked");
    byEntity.forEach((entity, entries) -> {
      ArrayNode events = list.addObject().put("type", entity.type()).put("key", entity.key()).putArray("events");
      for (Entry entry : entries) {
        ObjectNode item = events.addObject().put("id", entry.id());
        item.put("type", entry.change().path("event").path("type").asText());
        if (entry.error() != null) {
          item.put("error", entry.error()).put("attempts", entry.attempts());
        }
      }
    });
    return json;
  }
}
