package io.kfold.entity;

import java.util.Map;

/**
 * A failure a caller can act on, with the HTTP status it maps to. One place, the HTTP API's
 * problem mapper, turns it into {@code application/problem+json}.
 */
public class KfoldException extends RuntimeException {

  private final int status;
  private final String title;
  private final Map<String, Object> details;

  public KfoldException(int status, String title, String detail, Map<String, Object> details) {
    super(detail);
    this.status = status;
    this.title = title;
    this.details = Map.copyOf(details);
  }

  public static KfoldException badRequest(String detail) {
    return new KfoldException(400, "Bad request", detail, Map.of());
  }

  public static KfoldException notFound(String detail) {
    return new KfoldException(404, "Not found", detail, Map.of());
  }

  public static KfoldException versionConflict(String detail, long currentVersion) {
    return new KfoldException(409, "Version conflict", detail, Map.of("currentVersion", currentVersion));
  }

  public static KfoldException timeout(String detail) {
    return new KfoldException(504, "Timeout", detail, Map.of());
  }

  public static KfoldException unavailable(String detail) {
    return new KfoldException(503, "Unavailable", detail, Map.of());
  }

  public int status() {
    return status;
  }

  public String title() {
    return title;
  }

  /** Extra members of the problem body, such as {@code currentVersion}. */
  public Map<String, Object> details() {
    return details;
  }
}
