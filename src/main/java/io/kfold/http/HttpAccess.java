package io.kfold.http;

import io.kfold.auth.AuthConfig;
import io.kfold.auth.Authenticator;
import io.kfold.auth.Grant.Role;
import io.kfold.auth.NodeProof;
import io.kfold.auth.Principal;
import io.kfold.cluster.Forwarder;
import io.kfold.entity.KfoldException;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.SecurityPolicyHandler;

import java.time.Clock;
import java.util.Map;

/**
 * Who may call each route: the first handler of every route that is not open. It authenticates the
 * caller (a bearer API key or JWT, or a node's proof), checks the role the route needs, and keeps
 * the principal for the writes to record. It runs before the body is read, so a refused request
 * costs no buffering of its body.
 *
 * <p>A request another node forwarded ({@code X-Kfold-Forwarded-By}) must carry that node's proof,
 * or it is refused: the forwarding path is no way around the checks. With the caller's
 * {@code Authorization} it is checked as the caller's; without one, as the node's own
 * ({@link Principal#node}).
 */
final class HttpAccess {

  private static final String PRINCIPAL = "kfold.principal";
  private static final String CHALLENGE = "Bearer realm=\"kfold\"";

  private final AuthConfig config;
  private final Authenticator authenticator;
  private final NodeProof proof;

  HttpAccess(Vertx vertx, AuthConfig config) {
    this.config = config;
    this.authenticator = new Authenticator(vertx, config);
    this.proof = new NodeProof(config.clusterSecret(), Clock.systemUTC());
  }

  /** The route needs {@code role} on the type named by the path parameter {@code typeParam} (null: names no type). */
  Handler<RoutingContext> needs(Role role, String typeParam) {
    return new Check(role, typeParam, false);
  }

  /** The same, for a route whose body a body handler reads next: the request stays paused until it does. */
  Handler<RoutingContext> needsWithBody(Role role, String typeParam) {
    return new Check(role, typeParam, true);
  }

  /**
   * A security policy to the router, which then lets it run before the body handler (it refuses a
   * body handler after a handler of its own kind).
   */
  private final class Check implements SecurityPolicyHandler {
    private final Role role;
    private final String typeParam;
    private final boolean bodyNext;

    Check(Role role, String typeParam, boolean bodyNext) {
      this.role = role;
      this.typeParam = typeParam;
      this.bodyNext = bodyNext;
    }

    @Override
    public void handle(RoutingContext ctx) {
      check(ctx, role, typeParam, bodyNext);
    }
  }

  /** The name a write records in its events' {@code meta.principal}: the caller's; null for a node's own write or without authentication. */
  static String principal(RoutingContext ctx) {
    Principal principal = ctx.get(PRINCIPAL);
    return principal == null || principal.node() ? null : principal.name();
  }

  private void check(RoutingContext ctx, Role role, String typeParam, boolean bodyNext) {
    if (config.mode() == AuthConfig.Mode.NONE) {
      ctx.next();
      return;
    }
    HttpServerRequest request = ctx.request();
    String node = request.getHeader(Forwarder.FORWARDED_BY);
    if (node != null && !proof.verify(node, request.getHeader(NodeProof.HEADER), request.method().name(),
        request.uri())) {
      refuse(ctx, Authenticator.invalid("the request says a node forwarded it (" + Forwarder.FORWARDED_BY
          + ") but carries no valid proof of that node"), true);
      return;
    }
    String authorization = request.getHeader("Authorization");
    Future<Principal> principal;
    if (authorization != null) {
      if (!authorization.regionMatches(true, 0, "Bearer ", 0, 7)) {
        refuse(ctx, Authenticator.invalid("send the API key or token as Authorization: Bearer <token>"), true);
        return;
      }
      request.pause();  // authentication may complete later; the body waits for the body handler
      principal = authenticator.authenticate(authorization.substring(7).trim());
    } else if (node != null) {
      principal = Future.succeededFuture(Principal.node(node));
    } else {
      refuse(ctx, new KfoldException(401, "Unauthorized", request.method() + " " + request.path()
          + " needs credentials: Authorization: Bearer <API key or token>", Map.of()), false);
      return;
    }
    String type = typeParam == null ? null : ctx.pathParam(typeParam);
    principal.onComplete(authenticated -> {
      if (authenticated.failed()) {
        request.resume();
        refuse(ctx, authenticated.cause() instanceof KfoldException e ? e
            : Authenticator.invalid("the credentials could not be checked"), true);
      } else if (!authenticated.result().may(role, type)) {
        request.resume();
        ctx.fail(new KfoldException(403, "Forbidden", "'" + authenticated.result().name() + "' lacks the role "
            + role.name().toLowerCase() + (type == null ? "" : " on '" + type + "'") + " that "
            + request.method() + " " + request.path() + " needs", Map.of()));
      } else {
        ctx.put(PRINCIPAL, authenticated.result());
        if (!bodyNext) {
          request.resume();
        }
        ctx.next();
      }
    });
  }

  /** A 401 with the challenge; {@code badCredentials}: credentials were given and are not valid. */
  private static void refuse(RoutingContext ctx, KfoldException e, boolean badCredentials) {
    ctx.response().putHeader("WWW-Authenticate", CHALLENGE + (badCredentials ? ", error=\"invalid_token\"" : ""));
    ctx.fail(e);
  }
}
