package io.kfold.view;

import io.kfold.entity.ViewDefinition;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.regex.Pattern;

/**
 * One build of a view: the definition it was built with (a short hash of its fingerprint) and its
 * generation, which {@code POST /v1/_views/{view}/rebuild} raises. Spelled {@code <hash>-<generation>},
 * e.g. {@code 3fa2c91b-1}. Every node derives the same name from the same definition and
 * generation, so nodes agree on a version without asking each other.
 */
public record ViewVersion(String definition, int generation) implements Comparable<ViewVersion> {

  /** A definition's hash; compiled once, as versions are parsed for every contribution folded. */
  private static final Pattern DEFINITION = Pattern.compile("[0-9a-f]{8}");

  public ViewVersion {
    if (!DEFINITION.matcher(definition).matches() || generation < 1) {
      throw new IllegalArgumentException("not a view version: " + definition + "-" + generation);
    }
  }

  /** The version of {@code view} at {@code generation}. */
  public static ViewVersion of(ViewDefinition view, int generation) {
    return new ViewVersion(definitionHash(view.fingerprint()), generation);
  }

  /** The first 4 bytes of the fingerprint's SHA-256, in hex. */
  static String definitionHash(String fingerprint) {
    try {
      byte[] digest = MessageDigest.getInstance("SHA-256").digest(fingerprint.getBytes(StandardCharsets.UTF_8));
      return HexFormat.of().formatHex(digest, 0, 4);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every Java has SHA-256", e);
    }
  }

  /** Parses {@code <hash>-<generation>}; an IllegalArgumentException when it is no version. */
  public static ViewVersion parse(String text) {
    int dash = text.indexOf('-');
    try {
      return new ViewVersion(dash < 0 ? text : text.substring(0, dash), Integer.parseInt(text.substring(dash + 1)));
    } catch (RuntimeException e) {
      throw new IllegalArgumentException("not a view version: " + text);
    }
  }

  /** Whether this version was built with the same definition as {@code other}. */
  public boolean sameDefinition(ViewVersion other) {
    return definition.equals(other.definition);
  }

  /** Later generations first come last; versions of other definitions order by their hash. */
  @Override
  public int compareTo(ViewVersion other) {
    int byGeneration = Integer.compare(generation, other.generation);
    return byGeneration != 0 ? byGeneration : definition.compareTo(other.definition);
  }

  @Override
  public String toString() {
    return definition + "-" + generation;
  }
}
