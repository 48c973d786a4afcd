package io.kfold.auth;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.kfold.config.ConfigKeys;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * The {@code auth:} section: who may call the HTTP API and what each caller may do, and the secret
 * the nodes of a cluster prove themselves to each other with.
 *
 * @param mode          none (loopback only), api-keys or jwt
 * @param apiKeys       by name: the key's SHA-256 and the caller's grants (the configuration's and the file's)
 * @param jwt           for mode jwt
 * @param metricsOpen   whether {@code /metrics} answers anyone, or needs {@code admin}
 * @param clusterSecret keys the node proofs; empty only in mode none
 */
public record AuthConfig(Mode mode, Map<String, ApiKey> apiKeys, Jwt jwt, boolean metricsOpen, String clusterSecret) {

  public enum Mode { NONE, API_KEYS, JWT }

  /** A key by the SHA-256 of its text, which itself is never in the configuration. */
  public record ApiKey(String name, byte[] sha256, List<Grant> grants) {}

  /**
   * @param publicKeyPem the PEM text of the public key that signs the tokens; empty with a JWKS
   * @param jwks         the JSON of a JWKS ({@code {"keys": [...]}}); empty with a public key
   * @param algorithm    of the PEM key: RS256, ES256, ...
   * @param rolesClaim   the claim that holds the caller's grants, a list of strings
   */
  public record Jwt(String publicKeyPem, String jwks, String algorithm, String issuer, String audience,
                    String rolesClaim) {}

  /** Open, for one node on a developer's machine: the shipped default. */
  public static final AuthConfig NONE = new AuthConfig(Mode.NONE, Map.of(), null, true, "");

  public static final ConfigKeys.Section KEYS = new ConfigKeys.Section(Map.of(
      "mode", ConfigKeys.VALUE,
      "apiKeys", new ConfigKeys.Named(ConfigKeys.values("sha256", "roles")),
      "apiKeysFile", ConfigKeys.VALUE,
      "jwt", ConfigKeys.values("publicKey", "jwks", "algorithm", "issuer", "audience", "rolesClaim"),
      "metrics", ConfigKeys.VALUE,
      "clusterSecret", ConfigKeys.VALUE));

  private static final Pattern SHA256 = Pattern.compile("[0-9a-fA-F]{64}");
  private static final Pattern KEY_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._@-]{0,127}");
  private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

  /**
   * The section as configured; {@code httpHost} is where the API listens, since an open API is
   * allowed on a loopback address only.
   */
  public static AuthConfig from(JsonNode auth, String httpHost) {
    String modeName = auth.path("mode").asText("none");
    Mode mode = switch (modeName) {
      case "none" -> Mode.NONE;
      case "api-keys" -> Mode.API_KEYS;
      case "jwt" -> Mode.JWT;
      default -> throw at("auth.mode", "'" + modeName + "' is no mode: none, api-keys or jwt");
    };
    String metrics = auth.path("metrics").asText("open");
    if (!metrics.equals("open") && !metrics.equals("admin")) {
      throw at("auth.metrics", "'" + metrics + "': open (anyone may read /metrics) or admin");
    }
    if (mode == Mode.NONE) {
      if (!loopback(httpHost)) {
        throw at("auth.mode", "is 'none' (no authentication) while http.host is '" + httpHost + "', which is not"
            + " a loopback address: anyone who reaches the port could read and write everything. Choose"
            + " auth.mode: api-keys (keys as SHA-256 hashes with roles, in auth.apiKeys) or jwt (tokens signed by"
            + " your identity provider, auth.jwt), with auth.clusterSecret; or listen on 127.0.0.1 only");
      }
      return new AuthConfig(Mode.NONE, Map.of(), null, metrics.equals("open"), "");
    }
    String secret = auth.path("clusterSecret").asText("");
    if (secret.length() < 16) {
      throw at("auth.clusterSecret", (secret.isEmpty() ? "is missing" : "is too short") + ": with auth.mode "
          + modeName + " the nodes prove each other's requests with a secret they share, at least 16 characters,"
          + " such as ${file:/run/secrets/kfold-cluster-secret}");
    }
    Map<String, ApiKey> keys = new LinkedHashMap<>();
    Jwt jwt = null;
    if (mode == Mode.API_KEYS) {
      apiKeys(auth.path("apiKeys"), "auth.apiKeys", keys);
      String file = auth.path("apiKeysFile").asText("");
      if (!file.isEmpty()) {
        JsonNode fromFile;
        try {
          fromFile = YAML.readTree(Path.of(file).toFile());
        } catch (IOException e) {
          throw at("auth.apiKeysFile", "cannot read " + file + ": " + e.getMessage());
        }
        apiKeys(fromFile == null ? YAML.createObjectNode() : fromFile, "auth.apiKeysFile " + file, keys);
      }
      Map<String, String> byHash = new LinkedHashMap<>();
      for (ApiKey key : keys.values()) {
        String other = byHash.putIfAbsent(java.util.HexFormat.of().formatHex(key.sha256()), key.name());
        if (other != null) {
          throw at("auth.apiKeys", "'" + other + "' and '" + key.name() + "' have the same sha256: one key would"
              + " stand for two callers");
        }
      }
      if (keys.isEmpty()) {
        throw at("auth.apiKeys", "with auth.mode api-keys, declare at least one key: name: {sha256: <the SHA-256 of the"
            + " key in hex, printf %s KEY | sha256sum>, roles: [read, write]}, in auth.apiKeys or auth.apiKeysFile");
      }
    } else {
      jwt = jwt(auth.path("jwt"));
    }
    return new AuthConfig(mode, Map.copyOf(keys), jwt, metrics.equals("open"), secret);
  }

  /** 127.0.0.0/8, ::1 or localhost: reachable from this machine only. */
  public static boolean loopback(String host) {
    return host.equalsIgnoreCase("localhost") || host.equals("::1") || host.equals("[::1]")
        || host.matches("127\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}");
  }

  private static void apiKeys(JsonNode declared, String where, Map<String, ApiKey> keys) {
    if (declared.isMissingNode() || declared.isNull()) {
      return;
    }
    if (!declared.isObject()) {
      throw at(where, "expected keys by name: {ci-bot: {sha256: ..., roles: [read]}}");
    }
    for (Iterator<Map.Entry<String, JsonNode>> it = declared.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> entry = it.next();
      String name = entry.getKey();
      String at = where + "." + name;
      if (!KEY_NAME.matcher(name).matches()) {
        throw at(at, "a key's name is 1 to 128 of A-Z a-z 0-9 . _ @ -, starting with a letter or digit");
      }
      if (keys.containsKey(name)) {
        throw at(at, "the key '" + name + "' is declared twice");
      }
      String sha256 = entry.getValue().path("sha256").asText("");
      if (!SHA256.matcher(sha256).matches()) {
        // The value is not quoted: someone may have put the key itself here.
        throw at(at + ".sha256", "must be the SHA-256 of the key, 64 hex digits (printf %s KEY | sha256sum),"
            + " never the key itself");
      }
      keys.put(name, new ApiKey(name, java.util.HexFormat.of().parseHex(sha256.toLowerCase()),
          grants(entry.getValue().path("roles"), at + ".roles")));
    }
  }

  private static List<Grant> grants(JsonNode roles, String at) {
    if (!roles.isArray() || roles.isEmpty()) {
      throw at(at, "expected a list of roles: read, write, append, admin, each but admin may be limited to a type"
          + " (write:orders)");
    }
    List<Grant> grants = new ArrayList<>();
    for (JsonNode role : roles) {
      try {
        grants.add(Grant.parse(role.asText("")));
      } catch (IllegalArgumentException e) {
        throw at(at, e.getMessage());
      }
    }
    return List.copyOf(grants);
  }

  private static Jwt jwt(JsonNode jwt) {
    String publicKey = jwt.path("publicKey").asText("");
    String jwks = jwt.path("jwks").asText("");
    if (publicKey.isEmpty() == jwks.isEmpty()) {
      throw at("auth.jwt", "with auth.mode jwt, name either publicKey (a PEM file) or jwks (a JWKS file) of the"
          + " key that signs the tokens");
    }
    String issuer = jwt.path("issuer").asText("");
    String audience = jwt.path("audience").asText("");
    if (issuer.isEmpty() || audience.isEmpty()) {
      throw at("auth.jwt", "issuer and audience are required: a token is accepted only when its iss and aud are"
          + " these");
    }
    String rolesClaim = jwt.path("rolesClaim").asText("roles");
    String jwksJson = jwks.isEmpty() ? "" : read(jwks, "auth.jwt.jwks");
    if (!jwks.isEmpty()) {
      JsonNode keys;
      try {
        keys = YAML.readTree(jwksJson).path("keys");
      } catch (IOException e) {
        throw at("auth.jwt.jwks", jwks + " is not JSON: " + e.getMessage());
      }
      // Without a key vertx-auth-jwt runs unsecured and would take unsigned tokens.
      if (!keys.isArray() || keys.isEmpty()) {
        throw at("auth.jwt.jwks", jwks + " holds no keys: expected {\"keys\": [{\"kty\": ...}, ...]}");
      }
    }
    return new Jwt(publicKey.isEmpty() ? "" : read(publicKey, "auth.jwt.publicKey"), jwksJson,
        jwt.path("algorithm").asText("RS256"), issuer, audience, rolesClaim.isEmpty() ? "roles" : rolesClaim);
  }

  private static String read(String file, String at) {
    try {
      return Files.readString(Path.of(file), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw at(at, "cannot read " + file + ": " + e);
    }
  }

  private static IllegalArgumentException at(String place, String problem) {
    return new IllegalArgumentException("configuration: '" + place + "' " + problem);
  }
}
