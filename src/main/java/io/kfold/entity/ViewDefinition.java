package io.kfold.entity;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.List;

/**
 * A view: the entities of some types grouped into rows by a key taken from each entity's state,
 * with fields aggregated over the entities of each row. An entity counts in at most one row of a
 * view; when its state changes, the fold takes its old share out of the row it counted in and puts
 * its new share into the row it counts in now (Kafka Streams' adder and subtractor), so {@link #add}
 * and {@link #subtract} must undo each other exactly.
 *
 * <p>Declared in configuration ({@code views:}) or written in Java for what configuration cannot
 * say. All methods must be pure: every node folds on its own and all must agree.
 */
public interface ViewDefinition {

  /** The view's name in URLs and topic names. */
  String name();

  /** The entity types whose entities count in the view. */
  List<String> from();

  /**
   * Identifies the definition: when it changes, the view is built again. Two definitions that
   * aggregate alike must give the same fingerprint, whatever their spelling.
   */
  String fingerprint();

  /**
   * The row an entity of {@code type} in {@code state} counts in, and what it brings there; null
   * when it counts in none (no key, or filtered out). {@code values} is all that {@link #add} and
   * {@link #subtract} need of the entity, kept small: it travels in the contribution records.
   */
  Share share(String type, JsonNode state);

  /** A row before its first entity. */
  ObjectNode emptyRow();

  /** The row with one more entity's share; may modify and return {@code row}. */
  ObjectNode add(ObjectNode row, JsonNode values);

  /** The row with one entity's share taken out; may modify and return {@code row}. */
  ObjectNode subtract(ObjectNode row, JsonNode values);

  /** What a read of the row answers ({@code row} in {@code {key, row, entities}}). */
  JsonNode answer(ObjectNode row);

  /** An entity's share of a view: the row it counts in, and its values there. */
  record Share(String rowKey, JsonNode values) {}
}
