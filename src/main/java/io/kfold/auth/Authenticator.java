package io.kfold.auth;

import io.kfold.entity.KfoldException;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.auth.JWTOptions;
import io.vertx.ext.auth.PubSecKeyOptions;
import io.vertx.ext.auth.authentication.TokenCredentials;
import io.vertx.ext.auth.jwt.JWTAuth;
import io.vertx.ext.auth.jwt.JWTAuthOptions;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Turns a bearer token into the {@link Principal} it stands for: an API key by its SHA-256, or a
 * JWT checked by vertx-auth-jwt (signature, expiry, issuer, audience). A token is never logged nor
 * quoted in an answer.
 */
public final class Authenticator {

  private final AuthConfig config;
  private final JWTAuth jwt;

  public Authenticator(Vertx vertx, AuthConfig config) {
    this.config = config;
    this.jwt = config.mode() == AuthConfig.Mode.JWT ? jwtAuth(vertx, config.jwt()) : null;
  }

  private static JWTAuth jwtAuth(Vertx vertx, AuthConfig.Jwt settings) {
    JWTAuthOptions options = new JWTAuthOptions().setJWTOptions(new JWTOptions()
        .setIssuer(settings.issuer()).addAudience(settings.audience()));
    if (!settings.publicKeyPem().isEmpty()) {
      options.addPubSecKey(new PubSecKeyOptions().setAlgorithm(settings.algorithm()).setBuffer(settings.publicKeyPem()));
    } else {
      JsonArray keys = new JsonObject(settings.jwks()).getJsonArray("keys", new JsonArray());
      keys.forEach(key -> options.addJwk((JsonObject) key));
    }
    return JWTAuth.create(vertx, options);
  }

  /** The principal of {@code token}; fails with a 401 {@link KfoldException} that says why, never quoting it. */
  public Future<Principal> authenticate(String token) {
    if (jwt != null) {
      return jwt(token);
    }
    try {
      return Future.succeededFuture(apiKey(token));
    } catch (KfoldException e) {
      return Future.failedFuture(e);
    }
  }

  private Principal apiKey(String token) {
    byte[] hash = sha256(token);
    AuthConfig.ApiKey found = null;
    // Every key is compared, in constant time, so that the time taken says nothing about the hashes.
    for (AuthConfig.ApiKey key : config.apiKeys().values()) {
      if (MessageDigest.isEqual(hash, key.sha256())) {
        found = key;
      }
    }
    if (found == null) {
      throw invalid("the API key is not known");
    }
    return new Principal(found.name(), found.grants(), false);
  }

  private Future<Principal> jwt(String token) {
    return jwt.authenticate(new TokenCredentials(token))
        .recover(e -> Future.failedFuture(invalid("the token is not valid: " + e.getMessage())))
        .map(user -> {
          JsonObject claims = user.attributes().getJsonObject("accessToken", user.principal());
          String subject = claims.getString("sub");
          if (subject == null || subject.isBlank()) {
            throw invalid("the token has no subject (sub)");
          }
          if (!claims.containsKey("exp")) {
            throw invalid("the token has no expiry (exp)");
          }
          return new Principal(subject, grants(claims.getValue(config.jwt().rolesClaim())), false);
        });
  }

  /** The roles of the claim, a list of strings; a role this node does not know is left out. */
  private static List<Grant> grants(Object claim) {
    List<Grant> grants = new ArrayList<>();
    if (claim instanceof JsonArray roles) {
      for (Object role : roles) {
        if (role instanceof String text) {
          try {
            grants.add(Grant.parse(text));
          } catch (IllegalArgumentException e) {
            // Issued for other services too: a role of theirs is none of kfold's.
          }
        }
      }
    }
    return List.copyOf(grants);
  }

  /** A 401 that tells the client to get another token. */
  public static KfoldException invalid(String detail) {
    return new KfoldException(401, "Unauthorized", detail, Map.of());
  }

  static byte[] sha256(String text) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is part of every Java runtime", e);
    }
  }
}
