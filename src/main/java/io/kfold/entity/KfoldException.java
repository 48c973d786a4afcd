package io.kfold.entity;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.types.Envelopes;

import java.util.Map;

/**
 * A failure a caller can act on, with the HTTP status it maps to. One place, the HTTP API's
 * problem mapper, turns it into {@code application/problem+json}; the event bus carries the same
 * problem as its failure's message, and the clients turn it back into this exception, or into the
 * subclass of its case ({@link #of}).
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

  public static BadRequestException badRequest(String detail) {
    return new BadRequestException(detail);
  }

  public static NotFoundException notFound(String detail) {
    return new NotFoundException(detail);
  }

  public static VersionConflictException versionConflict(String detail, long currentVersion) {
    return new VersionConflictException(detail, currentVersion);
  }

  public static KfoldException timeout(String detail) {
    return new KfoldException(504, "Timeout", detail, Map.of());
  }

  public static KfoldException unavailable(String detail) {
    return new KfoldException(503, "Unavailable", detail, Map.of());
  }

  /**
   * The exception of a problem a node answered: the subclass of its case (400, 404, a 409 with
   * {@code currentVersion}, 422), else this class, with the same status, title, detail and members.
   */
  public static KfoldException of(int status, String title, String detail, Map<String, Object> details) {
    Object currentVersion = details.get("currentVersion");
    return switch (status) {
      case 400 -> new BadRequestException(detail);
      case 404 -> new NotFoundException(detail);
      case 422 -> new CommandRejectedException(detail);
      case 409 -> currentVersion instanceof Number n ? new VersionConflictException(detail, n.longValue())
          : currentVersion instanceof JsonNode n && n.canConvertToLong() ? new VersionConflictException(detail, n.longValue())
          : new KfoldException(status, title, detail, details);
      default -> new KfoldException(status, title, detail, details);
    };
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

  /** The problem body (RFC 9457) of this failure: {@code type, title, status, detail} and the extra members. */
  public ObjectNode problem() {
    ObjectNode body = JsonNodeFactory.instance.objectNode();
    body.put("type", "about:blank");
    body.put("title", title);
    body.put("status", status);
    body.put("detail", getMessage());
    details.forEach((name, value) -> body.set(name, Envelopes.JSON.valueToTree(value)));
    return body;
  }
}
