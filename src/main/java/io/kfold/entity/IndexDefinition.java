package io.kfold.entity;

import com.fasterxml.jackson.core.JsonPointer;

import java.util.Locale;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * A secondary index of an entity type: the fold keeps, for each entity, one entry per value found
 * at {@code path} in its state (one per element when the value is an array), so that a query can
 * find the entities with a value, or with values in a range, without reading every state.
 *
 * @param name a query names the index by it ({@code ?status=paid}, {@code ?total.from=10})
 * @param path a JSON pointer into the state ({@code /customerEmail}, {@code /address/city})
 * @param kind the order of the values: strings by their UTF-8 bytes, or numbers by their value
 */
public record IndexDefinition(String name, String path, Kind kind) {

  /** How an index orders and compares its values. */
  public enum Kind {
    /** Text in UTF-8 byte order; a number or a boolean is indexed by its JSON text. */
    STRING,
    /** Numbers by their exact value ({@code 10}, {@code 10.0} and {@code 1e1} are one value); others are not indexed. */
    NUMBER;

    /** The kind named in configuration: {@code string} or {@code number}. */
    public static Kind named(String name) {
      for (Kind kind : values()) {
        if (kind.name().toLowerCase(Locale.ROOT).equals(name)) {
          return kind;
        }
      }
      throw new IllegalArgumentException("index kind '" + name + "' is unknown; expected 'string' or 'number'");
    }

    public String configName() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  private static final Pattern NAME = Pattern.compile("[A-Za-z][A-Za-z0-9_-]{0,62}");
  /** Names a query gives another meaning: an index cannot take them. */
  public static final Set<String> RESERVED = Set.of("limit", "after", "fields", "stale", "minPosition", "timeoutMs");

  public IndexDefinition {
    if (name == null || !NAME.matcher(name).matches() || RESERVED.contains(name)) {
      throw new IllegalArgumentException("index name '" + name + "' is invalid: letters, digits, '_' and '-', starting"
          + " with a letter, at most 63, and none of " + RESERVED);
    }
    if (kind == null) {
      throw new IllegalArgumentException("index '" + name + "' has no kind");
    }
    if (path == null || !path.startsWith("/")) {
      throw new IllegalArgumentException("index '" + name + "': path '" + path
          + "' is not a JSON pointer to a member of the state (such as /customerEmail)");
    }
    try {
      JsonPointer.compile(path);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("index '" + name + "': path '" + path + "' is not a valid JSON pointer: "
          + e.getMessage(), e);
    }
  }

  /** A string index. */
  public static IndexDefinition of(String name, String path) {
    return new IndexDefinition(name, path, Kind.STRING);
  }
}
