package io.kfold.entity;

import java.util.Map;

/** The domain refuses a command, with its reason: 422, nothing appended. */
public class CommandRejectedException extends KfoldException {
  public CommandRejectedException(String reason) {
    super(422, "Command rejected", reason, Map.of());
  }

  /** Why the domain refused the command, as its decide said. */
  public String reason() {
    return getMessage();
  }
}
