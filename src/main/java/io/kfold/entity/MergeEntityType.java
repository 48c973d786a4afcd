package io.kfold.entity;

import com.fasterxml.jackson.core.io.SerializedString;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.POJONode;
import com.fasterxml.jackson.databind.util.RawValue;
import io.kfold.types.Envelopes;

import java.util.Iterator;
import java.util.Map;

/** A type declared in configuration only: each event's payload is an RFC 7396 JSON Merge Patch. */
public final class MergeEntityType implements EntityType {

  private final String name;

  public MergeEntityType(String name) {
    this.name = name;
  }

  @Override
  public String name() {
    return name;
  }

  @Override
  public JsonNode initialState() {
    return JsonNodeFactory.instance.objectNode();
  }

  @Override
  public JsonNode apply(JsonNode state, Envelope event) {
    return mergePatch(state, event.payload());
  }

  /**
   * RFC 7396: objects merge member by member, null removes a member, anything else replaces. The
   * target is not modified: the result is a new node that shares the target's unpatched members
   * (states are never modified once made, so sharing is safe and spares a deep copy per event).
   *
   * <p>A member that is not an object is kept as its JSON text, written once when it is patched in:
   * the fold writes the whole state after every event, and copying the text of the members an event
   * did not touch costs far less than writing them again. Such a member reads as a {@code POJONode}
   * holding a {@link RawValue}; states are read as JSON text everywhere else, never as these nodes.
   */
  static JsonNode mergePatch(JsonNode target, JsonNode patch) {
    if (!patch.isObject()) {
      return new POJONode(new RawValue(new SerializedString(Envelopes.toText(patch))));
    }
    ObjectNode result = JsonNodeFactory.instance.objectNode();
    if (target != null && target.isObject()) {
      result.setAll((ObjectNode) target);
    }
    for (Iterator<Map.Entry<String, JsonNode>> it = patch.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> member = it.next();
      if (member.getValue().isNull()) {
        result.remove(member.getKey());
      } else {
        result.set(member.getKey(), mergePatch(result.get(member.getKey()), member.getValue()));
      }
    }
    return result;
  }
}
