package io.kfold.entity;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.List;

/**
 * An entity type: how its events fold into its state.
 *
 * <p>{@code apply} must be pure: the same state and event always give the same new state, with no
 * side effect, because every node folds the log on its own and all must agree. It must not modify
 * the state it receives; return a new one (or a modified deep copy). The fold calls it from several
 * threads at once, for entities of different partitions.
 *
 * <p>{@code decide} checks a command against the current state and answers the events it causes,
 * or throws: {@link CommandRejectedException} (422) when the domain's rules refuse it,
 * {@link KfoldException#badRequest} (400) when the command is malformed or unknown. It must not
 * change anything itself: kfold appends the events, and only if the entity is still at the version
 * the decision saw.
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

  /**
   * The events a command causes. {@code version} is 0 for an entity without events. The default
   * accepts every command as one event of the command's type and payload, which suits types whose
   * events are their commands, such as merge types.
   */
  default List<NewEvent> decide(JsonNode state, long version, Command command) {
    return List.of(new NewEvent(command.type(), command.payload()));
  }

  /**
   * The type's secondary indexes, which queries read. The configuration may declare more
   * ({@code types[].indexes}); names must differ across both. None by default.
   */
  default List<IndexDefinition> indexes() {
    return List.of();
  }
}
