package io.kfold.auth;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.kfold.config.NodeConfig;
import io.kfold.RunningNode;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.vertx.core.http.HttpMethod;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The compose file's nodes, as its containers would run them: the image listens on 0.0.0.0, its
 * {@code secrets} service runs the script that makes the cluster secret and the admin key, and
 * the nodes' environment turns authentication on with them. Docker is not needed: the script runs
 * here, into a folder that stands for the secrets volume.
 */
@ExtendWith(TestBroker.class)
class ComposeAuthTest {

  private static final String SECRETS_VOLUME = "/run/kfold";

  @Test
  @DisplayName("docker/compose.yaml's nodes start with authentication on: the admin key its secrets service makes"
      + " gets in, no key gets 401, and the image's 0.0.0.0 without a mode is refused")
  void composeRunsWithAuthOn() throws Exception {
    JsonNode compose = new ObjectMapper(new YAMLFactory()).readTree(Path.of("docker", "compose.yaml").toFile());
    String dockerfile = Files.readString(Path.of("docker", "Dockerfile"));

    // The secrets service runs the script the image holds, into the volume the nodes read.
    List<String> entrypoint = new ArrayList<>();
    compose.path("services").path("secrets").path("entrypoint").forEach(part -> entrypoint.add(part.asText()));
    assertThat(entrypoint).containsExactly("sh", "/opt/kfold/docker/make-secrets.sh", SECRETS_VOLUME);
    assertThat(dockerfile).contains("WORKDIR /opt/kfold", "COPY docker/make-secrets.sh docker/make-secrets.sh",
        "KFOLD_HTTP_HOST=0.0.0.0");
    Path secrets = TestNodes.tempDir("compose-secrets");
    Process script = new ProcessBuilder("sh", "docker/make-secrets.sh", secrets.toString())
        .redirectErrorStream(true).start();
    assertThat(script.waitFor(30, TimeUnit.SECONDS)).isTrue();
    String said = new String(script.getInputStream().readAllBytes());
    assertThat(script.exitValue()).as(said).isZero();
    String adminKey = Files.readString(secrets.resolve("admin.key")).trim();
    assertThat(said).as("the script prints no secret").doesNotContain(adminKey,
        Files.readString(secrets.resolve("cluster-secret")).trim());

    // kfold-1's environment, with the volume's path and the broker of this test; the host is the image's.
    Path dir = TestNodes.tempDir("compose-node");
    Map<String, String> env = TestNodes.env(TestNodes.newApp("compose"), dir);
    Map<String, String> asComposeRunsIt = new HashMap<>(env);
    compose.path("services").path("kfold-1").path("environment").fields().forEachRemaining(variable -> {
      String value = variable.getValue().asText().replace("$$", "$").replace(SECRETS_VOLUME, secrets.toString());
      if (!variable.getKey().equals("KFOLD_KAFKA_BOOTSTRAP") && !variable.getKey().equals("KFOLD_HTTP_ADVERTISED_URL")) {
        asComposeRunsIt.put(variable.getKey(), value);
      }
    });
    asComposeRunsIt.put("KFOLD_HTTP_HOST", "0.0.0.0");
    assertThat(asComposeRunsIt).containsEntry("KFOLD_AUTH_MODE", "api-keys");

    Map<String, String> withoutAuth = new HashMap<>(env);
    withoutAuth.put("KFOLD_HTTP_HOST", "0.0.0.0");
    assertThatThrownBy(() -> NodeConfig.load(withoutAuth)).hasMessageContaining("loopback");

    try (RunningNode node = RunningNode.start(NodeConfig.load(asComposeRunsIt))) {
      Map<String, String> admin = Map.of("Authorization", "Bearer " + adminKey);
      assertThat(node.call(HttpMethod.GET, "/v1/_cluster", null, Map.of()).status()).isEqualTo(401);
      assertThat(node.call(HttpMethod.GET, "/metrics", null, Map.of()).status()).isEqualTo(401);
      assertThat(node.call(HttpMethod.GET, "/v1/_cluster", null, admin).status()).isEqualTo(200);
      Reply placed = node.call(HttpMethod.POST, "/v1/orders/compose-1/commands",
          "{\"type\":\"place\",\"payload\":{\"customerEmail\":\"ada@example.com\",\"items\":[{\"sku\":\"book\",\"quantity\":2,\"price\":12.5}]}}",
          Map.of("Authorization", "Bearer " + adminKey, "content-type", "application/json"));
      assertThat(placed.status()).as(String.valueOf(placed.body())).isEqualTo(200);
      Reply history = node.call(HttpMethod.GET, "/v1/orders/compose-1/events", null, admin);
      assertThat(history.body().path("events").get(0).path("meta").path("principal").asText()).isEqualTo("admin");
    }
  }
}
