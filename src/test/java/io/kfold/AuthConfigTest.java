package io.kfold;

import io.kfold.auth.AuthConfig;
import io.kfold.ConfigCommandsTest.Run;
import io.kfold.auth.Grant;
import io.kfold.config.ConfigSource;
import io.kfold.config.NodeConfig;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import static io.kfold.ConfigCommandsTest.command;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The auth section: what a start refuses, keys from a file, and the cluster secret never shown. */
class AuthConfigTest {

  private static final String SECRET = "cluster-secret-never-shown";
  private static final String HASH = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
  private static final String OTHER_HASH = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";

  private static Map<String, String> env(String... pairs) {
    Map<String, String> env = new HashMap<>(Map.of("KFOLD_APP", "auth-config", "KFOLD_DATA_DIR", "data"));
    for (int i = 0; i < pairs.length; i += 2) {
      env.put(pairs[i], pairs[i + 1]);
    }
    return env;
  }

  @Test
  @DisplayName("mode none is refused off a loopback address, naming the modes to choose from; on one it is allowed")
  void noneOnlyOnLoopback() {
    Run refused = command(env("KFOLD_HTTP_HOST", "0.0.0.0"), "--check-config");
    assertThat(refused.status()).isEqualTo(Main.INVALID_CONFIGURATION);
    assertThat(refused.err()).contains("'auth.mode' is 'none'", "'0.0.0.0'", "not a loopback address",
        "auth.mode: api-keys", "or jwt", "auth.clusterSecret");
    for (String loopback : new String[] {"127.0.0.1", "127.1.2.3", "localhost", "::1"}) {
      assertThat(command(env("KFOLD_HTTP_HOST", loopback), "--check-config").status()).as(loopback).isZero();
    }
    assertThat(command(env("KFOLD_HTTP_HOST", "128.0.0.1"), "--check-config").status()).isNotZero();
  }

  @Test
  @DisplayName("a mode other than none needs the cluster secret, and api-keys at least one key")
  void secretAndKeysRequired() {
    String withKey = ConfigSourceTest.userFile("auth:\n  mode: api-keys\n  apiKeys:\n    ci: {sha256: " + HASH
        + ", roles: [read]}\n");
    Run noSecret = command(env(), "--check-config", withKey);
    assertThat(noSecret.status()).isEqualTo(Main.INVALID_CONFIGURATION);
    assertThat(noSecret.err()).contains("'auth.clusterSecret' is missing");
    Run noKey = command(env("KFOLD_AUTH_MODE", "api-keys", "KFOLD_AUTH_CLUSTER_SECRET", SECRET), "--check-config");
    assertThat(noKey.err()).contains("declare at least one key");
    assertThat(command(env("KFOLD_AUTH_CLUSTER_SECRET", SECRET), "--check-config", withKey).status()).isZero();
  }

  @Test
  @DisplayName("the cluster secret is masked in the printed configuration and in messages")
  void secretMasked() throws Exception {
    String file = ConfigSourceTest.userFile("auth:\n  mode: api-keys\n  clusterSecret: " + SECRET + "\n  apiKeys:\n"
        + "    ci: {sha256: " + HASH + ", roles: [read]}\n");
    Run printed = command(env("KFOLD_HTTP_HOST", "0.0.0.0"), "--print-config", file);
    assertThat(printed.status()).as(printed.err()).isZero();
    assertThat(printed.out()).contains("clusterSecret: " + ConfigSource.MASK).doesNotContain(SECRET);
    Run fromEnv = command(env("KFOLD_AUTH_CLUSTER_SECRET", SECRET + "-2"), "--print-config", file);
    assertThat(fromEnv.out()).contains("clusterSecret: " + ConfigSource.MASK).doesNotContain(SECRET);
    // Where the keys are is no secret, and an operator checking the configuration needs to see it.
    Path keys = TestNodes.tempDir("keys").resolve("kfold-api-keys.yaml");
    Files.writeString(keys, "deploy-bot: {sha256: " + OTHER_HASH + ", roles: [append]}\n");
    Run keysFile = command(env("KFOLD_AUTH_API_KEYS_FILE", keys.toString()), "--print-config", file);
    assertThat(keysFile.status()).as(keysFile.err()).isZero();
    assertThat(keysFile.out()).contains("apiKeysFile: " + keys);
  }

  @Test
  @DisplayName("keys come from the configuration and from apiKeysFile; a key itself instead of its hash, or an"
      + " unknown role, is refused without quoting it; so are two keys of one hash and a JWKS without keys")
  void keysAndRoles() throws Exception {
    Path keys = TestNodes.tempDir("keys").resolve("keys.yaml");
    // Any case: a hash printed in capitals is the same hash.
    Files.writeString(keys, "deploy-bot: {sha256: " + OTHER_HASH.toUpperCase() + ", roles: [append, admin]}\n");
    String file = ConfigSourceTest.userFile("auth:\n  mode: api-keys\n  apiKeysFile: " + keys + "\n  apiKeys:\n"
        + "    ci: {sha256: " + HASH + ", roles: [read, \"write:orders\"]}\n");
    AuthConfig auth = NodeConfig.load(env("KFOLD_CONFIG", file, "KFOLD_AUTH_CLUSTER_SECRET", SECRET)).auth();
    assertThat(auth.apiKeys()).containsOnlyKeys("ci", "deploy-bot");
    assertThat(auth.apiKeys().get("ci").grants()).containsExactly(new Grant(Grant.Role.READ, null),
        new Grant(Grant.Role.WRITE, "orders"));

    String plainKey = ConfigSourceTest.userFile("auth:\n  mode: api-keys\n  apiKeys:\n"
        + "    ci: {sha256: my-plain-api-key, roles: [read]}\n");
    assertThatThrownBy(() -> NodeConfig.load(env("KFOLD_CONFIG", plainKey, "KFOLD_AUTH_CLUSTER_SECRET", SECRET)))
        .hasMessageContaining("auth.apiKeys.ci.sha256").hasMessageNotContaining("my-plain-api-key");
    String twice = ConfigSourceTest.userFile("auth:\n  mode: api-keys\n  apiKeys:\n    a: {sha256: " + HASH
        + ", roles: [read]}\n    b: {sha256: " + HASH + ", roles: [admin]}\n");
    assertThatThrownBy(() -> NodeConfig.load(env("KFOLD_CONFIG", twice, "KFOLD_AUTH_CLUSTER_SECRET", SECRET)))
        .hasMessageContaining("'a' and 'b' have the same sha256");
    Path emptyJwks = TestNodes.tempDir("jwks").resolve("jwks.json");
    Files.writeString(emptyJwks, "{\"keys\": []}");
    String jwt = ConfigSourceTest.userFile("auth:\n  mode: jwt\n  jwt: {jwks: " + emptyJwks + ", issuer: i, audience: a}\n");
    assertThatThrownBy(() -> NodeConfig.load(env("KFOLD_CONFIG", jwt, "KFOLD_AUTH_CLUSTER_SECRET", SECRET)))
        .as("vertx-auth-jwt without a key would take unsigned tokens").hasMessageContaining("holds no keys");
    for (String role : new String[] {"delete", "admin:orders", "read:Orders"}) {
      String bad = ConfigSourceTest.userFile("auth:\n  mode: api-keys\n  apiKeys:\n    ci: {sha256: " + HASH
          + ", roles: [\"" + role + "\"]}\n");
      assertThatThrownBy(() -> NodeConfig.load(env("KFOLD_CONFIG", bad, "KFOLD_AUTH_CLUSTER_SECRET", SECRET)))
          .as(role).hasMessageContaining("auth.apiKeys.ci.roles");
    }
  }
}
