package io.kfold.auth;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.config.NodeConfig;
import io.kfold.RunningNode;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.Signature;
import java.time.Instant;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * One node in mode jwt, with the public key of a key pair the test makes and signs its tokens with:
 * a valid token's roles decide, and its sub is recorded; expired, wrongly signed, wrong-audience
 * and wrong-issuer tokens are refused.
 */
@ExtendWith(TestBroker.class)
class JwtAuthTest {

  private static final String ISSUER = "https://issuer.kfold.test";
  private static final String AUDIENCE = "kfold-api";
  private static final String RENAME = "{\"type\":\"Renamed\",\"payload\":{\"name\":\"Ada\"}}";

  private static KeyPair signer;
  private static RunningNode running;

  @BeforeAll
  static void start() throws Exception {
    signer = rsaKeys();
    Path dir = TestNodes.tempDir("jwt");
    Path publicKey = dir.resolve("signer.pem");
    Files.writeString(publicKey, "-----BEGIN PUBLIC KEY-----\n"
        + Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII)).encodeToString(signer.getPublic().getEncoded())
        + "\n-----END PUBLIC KEY-----\n");
    String auth = "mode: jwt\nclusterSecret: " + HttpAuthTest.SECRET + "\njwt:\n  publicKey: " + publicKey
        + "\n  algorithm: RS256\n  issuer: " + ISSUER + "\n  audience: " + AUDIENCE + "\n  rolesClaim: roles\n";
    Map<String, String> env = TestNodes.withSection(TestNodes.env(TestNodes.newApp("jwt"), dir), dir, "auth", auth);
    running = RunningNode.start(NodeConfig.load(env));
  }

  @AfterAll
  static void stop() throws Exception {
    if (running != null) {
      running.close();
    }
  }

  private static KeyPair rsaKeys() throws Exception {
    KeyPairGenerator generator = KeyPairGenerator.getInstance("RSA");
    generator.initialize(2048);
    return generator.generateKeyPair();
  }

  /** The claims of a token that this node accepts, for {@code sub} with {@code roles}, valid for ten minutes. */
  private static JsonObject claims(String sub, String... roles) {
    long now = Instant.now().getEpochSecond();
    return new JsonObject().put("sub", sub).put("iss", ISSUER).put("aud", AUDIENCE).put("iat", now)
        .put("exp", now + 600).put("roles", new JsonArray(List.of((Object[]) roles)));
  }

  /** A JWT of these claims, signed RS256 with {@code key}. */
  private static String token(JsonObject claims, PrivateKey key) throws Exception {
    Base64.Encoder base64 = Base64.getUrlEncoder().withoutPadding();
    String signed = base64.encodeToString("{\"alg\":\"RS256\",\"typ\":\"JWT\"}".getBytes(StandardCharsets.UTF_8)) + "."
        + base64.encodeToString(claims.encode().getBytes(StandardCharsets.UTF_8));
    Signature signature = Signature.getInstance("SHA256withRSA");
    signature.initSign(key);
    signature.update(signed.getBytes(StandardCharsets.US_ASCII));
    return signed + "." + base64.encodeToString(signature.sign());
  }

  private static Reply call(HttpMethod method, String path, String body, String token) throws Exception {
    return running.call(method, path, body, Map.of("Authorization", "Bearer " + token));
  }

  @Test
  @DisplayName("a valid token's roles decide what it may do, and a write records its sub in meta.principal")
  void validToken() throws Exception {
    String reader = token(claims("svc-reader", "read"), signer.getPrivate());
    String writer = token(claims("svc-writer", "write:users", "some-other-service-role"), signer.getPrivate());
    assertThat(call(HttpMethod.POST, "/v1/users/jwt-1/commands", RENAME, writer).status()).isEqualTo(200);
    assertThat(call(HttpMethod.POST, "/v1/users/jwt-1/commands", RENAME, reader).status()).isEqualTo(403);
    assertThat(call(HttpMethod.POST, "/v1/orders/jwt-1/commands", RENAME, writer).status()).isEqualTo(403);
    Reply history = call(HttpMethod.GET, "/v1/users/jwt-1/events", null, reader);
    assertThat(history.status()).isEqualTo(200);
    JsonNode events = history.body().path("events");
    assertThat(events.size()).as("the reader's command was refused: one event").isEqualTo(1);
    assertThat(events.get(0).path("meta").path("principal").asText()).isEqualTo("svc-writer");
  }

  @Test
  @DisplayName("expired, wrongly signed, wrong-audience, wrong-issuer and expiry-less tokens get 401 invalid_token")
  void invalidTokens() throws Exception {
    PrivateKey other = rsaKeys().getPrivate();
    long now = Instant.now().getEpochSecond();
    Map<String, String> refused = new LinkedHashMap<>();
    refused.put("expired", token(claims("svc", "read").put("iat", now - 600).put("exp", now - 300), signer.getPrivate()));
    refused.put("signed by another key", token(claims("svc", "read"), other));
    refused.put("for another audience", token(claims("svc", "read").put("aud", "another-api"), signer.getPrivate()));
    refused.put("from another issuer", token(claims("svc", "read").put("iss", "https://elsewhere.test"),
        signer.getPrivate()));
    JsonObject noExpiry = claims("svc", "read");
    noExpiry.remove("exp");
    refused.put("without an expiry", token(noExpiry, signer.getPrivate()));
    refused.put("not a token", "not.a.token");
    Base64.Encoder base64 = Base64.getUrlEncoder().withoutPadding();
    refused.put("unsigned (alg none)", base64.encodeToString("{\"alg\":\"none\",\"typ\":\"JWT\"}".getBytes(
        StandardCharsets.UTF_8)) + "." + base64.encodeToString(claims("svc", "read").encode().getBytes(StandardCharsets.UTF_8))
        + ".");
    for (var token : refused.entrySet()) {
      Reply reply = call(HttpMethod.GET, "/v1/users/jwt-2", null, token.getValue());
      assertThat(reply.status()).as(token.getKey() + ": " + reply.body()).isEqualTo(401);
      assertThat(reply.header("WWW-Authenticate")).as(token.getKey())
          .isEqualTo("Bearer realm=\"kfold\", error=\"invalid_token\"");
      assertThat(reply.body().path("detail").asText()).as(token.getKey()).doesNotContain(token.getValue());
    }
    // The same claims, signed with the right key: accepted (the entity does not exist).
    assertThat(call(HttpMethod.GET, "/v1/users/jwt-2", null, token(claims("svc", "read"), signer.getPrivate())).status())
        .isEqualTo(404);
  }

  @Test
  @DisplayName("with a JWKS instead of a PEM key, a token signed by one of its keys is accepted, another key's refused")
  void jwks() throws Exception {
    java.security.interfaces.RSAPublicKey key = (java.security.interfaces.RSAPublicKey) signer.getPublic();
    Base64.Encoder base64 = Base64.getUrlEncoder().withoutPadding();
    JsonObject jwk = new JsonObject().put("kty", "RSA").put("alg", "RS256").put("use", "sig").put("kid", "k1")
        .put("n", base64.encodeToString(unsigned(key.getModulus())))
        .put("e", base64.encodeToString(unsigned(key.getPublicExponent())));
    AuthConfig config = new AuthConfig(AuthConfig.Mode.JWT, Map.of(), new AuthConfig.Jwt("",
        new JsonObject().put("keys", new JsonArray().add(jwk)).encode(), "RS256", ISSUER, AUDIENCE, "roles"), true,
        HttpAuthTest.SECRET);
    Authenticator authenticator = new Authenticator(running.vertx, config);
    Principal principal = authenticator.authenticate(token(claims("svc-jwks", "read"), signer.getPrivate()))
        .await(10, java.util.concurrent.TimeUnit.SECONDS);
    assertThat(principal.name()).isEqualTo("svc-jwks");
    assertThat(principal.grants()).containsExactly(new Grant(Grant.Role.READ, null));
    Throwable refused = authenticator.authenticate(token(claims("svc-jwks", "read"), rsaKeys().getPrivate()))
        .transform(ar -> io.vertx.core.Future.succeededFuture(ar.cause())).await(10, java.util.concurrent.TimeUnit.SECONDS);
    assertThat(refused).isInstanceOf(io.kfold.entity.KfoldException.class);
    assertThat(((io.kfold.entity.KfoldException) refused).status()).isEqualTo(401);
  }

  /** A big integer's bytes without the sign byte Java adds, as a JWK wants them. */
  private static byte[] unsigned(java.math.BigInteger value) {
    byte[] bytes = value.toByteArray();
    return bytes[0] == 0 ? java.util.Arrays.copyOfRange(bytes, 1, bytes.length) : bytes;
  }
}
