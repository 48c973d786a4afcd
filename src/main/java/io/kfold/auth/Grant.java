package io.kfold.auth;

import java.util.Locale;
import java.util.regex.Pattern;

/**
 * A role a caller holds, for every type ({@code type} null) or for one: {@code write:orders}. For a
 * view's reads the type is the view's name ({@code read:customers}).
 */
public record Grant(Role role, String type) {

  /** What a caller may do. None implies another: a caller who needs two holds two. */
  public enum Role {
    /** States, histories, change streams, queries, views' rows and lists, positions. */
    READ,
    /** Commands, which the entity's type decides. */
    WRITE,
    /** Raw events, which skip the type's decision: privileged. */
    APPEND,
    /** Side-effect workers and their parked events, the cluster's state, view rebuilds. */
    ADMIN;

    String configName() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  private static final Pattern TYPE = Pattern.compile("[a-z][a-z0-9-]{0,62}");

  /** {@code read}, {@code write:orders}, ... */
  public static Grant parse(String text) {
    int colon = text.indexOf(':');
    String roleName = colon < 0 ? text : text.substring(0, colon);
    String type = colon < 0 ? null : text.substring(colon + 1);
    Role role;
    try {
      role = Role.valueOf(roleName.toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("'" + text + "' is no role: read, write, append or admin, optionally limited"
          + " to a type (write:orders)");
    }
    if (type != null && role == Role.ADMIN) {
      throw new IllegalArgumentException("'" + text + "': admin acts on the whole node and is not limited to a type");
    }
    if (type != null && !TYPE.matcher(type).matches()) {
      throw new IllegalArgumentException("'" + text + "': '" + type + "' is no type or view name");
    }
    return new Grant(role, type);
  }

  /** Whether this grant allows {@code role} on {@code type}; a null type: on anything (a read that names no type). */
  boolean allows(Role role, String type) {
    return this.role == role && (this.type == null || type == null || this.type.equals(type));
  }

  @Override
  public String toString() {
    return role.configName() + (type == null ? "" : ":" + type);
  }
}
