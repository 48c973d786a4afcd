package io.kfold.auth;

import java.util.List;

/**
 * Who made a request: an API key's name or a token's subject, with what it may do; or another
 * node of the cluster, acting on its own account.
 */
public record Principal(String name, List<Grant> grants, boolean node) {

  /**
   * A node asking on its own account, with no caller behind it: an event-bus command or append for
   * an entity another node folds, a query's or a view position's fan-out. Nodes read, write and
   * append for the application in their process; they need no admin.
   */
  public static Principal node(String name) {
    return new Principal("node:" + name, List.of(new Grant(Grant.Role.READ, null), new Grant(Grant.Role.WRITE, null),
        new Grant(Grant.Role.APPEND, null)), true);
  }

  /** Whether it may do {@code role} on {@code type} (null: a request that names no type). */
  public boolean may(Grant.Role role, String type) {
    return grants.stream().anyMatch(grant -> grant.allows(role, type));
  }
}
