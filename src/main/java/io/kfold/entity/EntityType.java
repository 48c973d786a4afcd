package io.kfold.entity;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * An entity type: how its events fold into its state.
 *
 * <p>{@code apply} must be pure: the same state and event always give the same new state, with no
 * side effect, because every node folds the log on its own and all must agree. It must not modify
 * the state it receives; return a new one (or a modified deep copy).
 */
public interface EntityType {

  /** The type's name in URLs and topic names. */
  String name();

  /** The state of an entity before its first event. */
  JsonNode initialState();

  /**
   * The state after {@code event}. Throwing rejects the event: it is dead-lettered, never applied.
   */
  JsonNode apply(JsonNode state, Envelope event);
}
