package io.kfold.effects;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.effects.ParkingLot.Request;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

class ParkingLotTest {

  private static final EntityRef ORDER = new EntityRef("orders", "o-1");
  private static final EntityRef SHIPMENT = new EntityRef("shipments", "o-1");

  private static Change change(EntityRef entity, long version) {
    ObjectNode json = JsonNodeFactory.instance.objectNode().put("id", entity.key() + ":" + version);
    json.putObject("event").put("id", entity + "-" + version).put("entity", entity.type()).put("key", entity.key())
        .put("version", version).put("type", "Changed").putObject("payload");
    return Change.of(json);
  }

  private static List<String> ids(ParkingLot lot, EntityRef entity) {
    return lot.entries(entity).stream().map(ParkingLot.Entry::id).toList();
  }

  @Test
  @DisplayName("a dead letter parks its entity alone: another type's entity with the same id is not parked")
  void parksByTypeAndId() {
    ParkingLot lot = new ParkingLot();
    lot.apply(ORDER.toString(), ParkingLot.deadLetter("hook", change(ORDER, 2), "answered 422", 1));
    lot.apply(ORDER.toString(), ParkingLot.parked("hook", change(ORDER, 3), "o-1:2"));
    assertThat(lot.isParked(ORDER)).isTrue();
    assertThat(lot.isParked(SHIPMENT)).isFalse();
    assertThat(lot.head(ORDER)).isEqualTo("o-1:2");
    assertThat(lot.size()).isEqualTo(2);
    JsonNode listed = lot.toJson().path("parked").get(0);
    assertThat(listed.path("type").asText()).isEqualTo("orders");
    assertThat(listed.path("events").get(0).path("error").asText()).isEqualTo("answered 422");
  }

  @Test
  @DisplayName("a request for a parked entity waits for its owner; its outcome releases what was replayed and skipped and answers the node that asked")
  void requestAndOutcome() {
    ParkingLot lot = new ParkingLot();
    lot.apply(ORDER.toString(), ParkingLot.deadLetter("hook", change(ORDER, 2), "answered 422", 1));
    lot.apply(ORDER.toString(), ParkingLot.parked("hook", change(ORDER, 3), "o-1:2"));
    lot.apply(ORDER.toString(), ParkingLot.parked("hook", change(ORDER, 4), "o-1:2"));
    Request skip = new Request("r-1", ORDER, true);
    assertThat(lot.apply(ORDER.toString(), ParkingLot.requested("hook", skip))).contains(new ParkingLot.Requested(skip));
    assertThat(lot.pending(ORDER::equals)).containsExactly(skip);

    var applied = lot.apply(ORDER.toString(), ParkingLot.resolved("hook", skip, List.of("o-1:2"), List.of("o-1:3"),
        "replaying o-1:4 failed: answered 500"));
    assertThat(applied).containsInstanceOf(ParkingLot.Resolved.class);
    JsonNode result = ((ParkingLot.Resolved) applied.orElseThrow()).result();
    assertThat(result.path("skipped").asInt()).isEqualTo(1);
    assertThat(result.path("replayed").asInt()).isEqualTo(1);
    assertThat(result.path("stillParked").asInt()).isEqualTo(1);
    assertThat(result.path("error").asText()).contains("o-1:4");
    assertThat(ids(lot, ORDER)).containsExactly("o-1:4");
    assertThat(lot.pending(entity -> true)).isEmpty();
    assertThat(lot.apply(ORDER.toString(), ParkingLot.resolved("hook", skip, List.of(), List.of(), null)))
        .as("a second outcome of the same request answers nobody").isEmpty();
  }

  @Test
  @DisplayName("a request for an entity that is not parked is answered at once, and nobody carries it out")
  void notParked() {
    ParkingLot lot = new ParkingLot();
    Request replay = new Request("r-2", SHIPMENT, false);
    assertThat(lot.apply(SHIPMENT.toString(), ParkingLot.requested("hook", replay)))
        .contains(new ParkingLot.NotParked("r-2", SHIPMENT));
    assertThat(lot.pending(entity -> true)).isEmpty();
  }

  @Test
  @DisplayName("records written when entities were keyed by id alone still read: a resolved record without a type resolves that id in every type")
  void recordsKeyedById() {
    ParkingLot lot = new ParkingLot();
    lot.apply("o-1", ParkingLot.deadLetter("hook", change(ORDER, 2), "answered 422", 1));
    lot.apply("o-1", ParkingLot.deadLetter("hook", change(SHIPMENT, 1), "answered 422", 1));
    ObjectNode legacy = JsonNodeFactory.instance.objectNode().put("kind", "resolved").put("worker", "hook")
        .put("how", "replayed");
    legacy.putArray("ids").add("o-1:2").add("o-1:1");
    lot.apply("o-1", legacy);
    assertThat(lot.isParked(ORDER)).isFalse();
    assertThat(lot.isParked(SHIPMENT)).isFalse();
  }
}
