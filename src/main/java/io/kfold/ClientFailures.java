package io.kfold;

import io.kfold.entity.KfoldException;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonObject;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The one mapping both clients use from what a node answered to a typed {@link KfoldException}:
 * a problem body (HTTP's, or the message of an event-bus failure) becomes the exception of its
 * status; what carries no problem gets one from its status.
 */
final class ClientFailures {

  private static final List<String> PROBLEM_MEMBERS = List.of("type", "title", "status", "detail");

  private ClientFailures() {}

  /** A failure answered with this status and body (problem JSON, or any text). */
  static KfoldException fromProblem(int status, String body) {
    String reason = HttpResponseStatus.valueOf(status).reasonPhrase();
    JsonObject problem = parse(body);
    if (problem == null) {
      return KfoldException.of(status, reason, body == null || body.isBlank() ? "the node answered " + status + " "
          + reason : body, Map.of());
    }
    Map<String, Object> details = new LinkedHashMap<>();
    problem.forEach(member -> {
      if (!PROBLEM_MEMBERS.contains(member.getKey()) && member.getValue() != null) {
        details.put(member.getKey(), member.getValue());
      }
    });
    return KfoldException.of(status, problem.getString("title", reason), problem.getString("detail", body), details);
  }

  /**
   * An event-bus request's failure: a node's failure carries its status and problem; no handler
   * at the address is a 503, as a node the HTTP client cannot reach (no kfold node on this bus
   * serves it: none running yet, or an unknown type or view); no reply in time a 504.
   */
  static Throwable fromBus(Throwable failure, String address) {
    if (!(failure instanceof ReplyException reply)) {
      return failure;
    }
    KfoldException typed = switch (reply.failureType()) {
      case RECIPIENT_FAILURE -> fromProblem(reply.failureCode(), reply.getMessage());
      case NO_HANDLERS -> KfoldException.unavailable("nothing answers at " + address
          + " on this event bus: no kfold node serves it (none running, or an unknown type or view)");
      case TIMEOUT -> KfoldException.timeout("no answer at " + address + " in time: " + reply.getMessage());
      default -> KfoldException.unavailable("the request to " + address + " failed: " + reply.getMessage());
    };
    typed.initCause(failure);
    return typed;
  }

  /** A request that got no answer at all (refused, reset, TLS): a 503 the caller may retry. */
  static KfoldException unreachable(String what, Throwable failure) {
    KfoldException typed = KfoldException.unavailable(what + " failed: " + failure.getMessage());
    typed.initCause(failure);
    return typed;
  }

  private static JsonObject parse(String body) {
    if (body == null || !body.stripLeading().startsWith("{")) {
      return null;
    }
    try {
      JsonObject json = new JsonObject(body);
      return json.containsKey("status") || json.containsKey("detail") ? json : null;
    } catch (DecodeException e) {
      return null;
    }
  }
}
