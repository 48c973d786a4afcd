package io.kfold.entity;

import java.util.Map;

/** The entity is not at the version the write expected: 409, nothing appended; retry from {@link #currentVersion()}. */
public class VersionConflictException extends KfoldException {

  private final long currentVersion;

  public VersionConflictException(String detail, long currentVersion) {
    super(409, "Version conflict", detail, Map.of("currentVersion", currentVersion));
    this.currentVersion = currentVersion;
  }

  /** The entity's version when the write was refused. */
  public long currentVersion() {
    return currentVersion;
  }
}
