package io.kfold.fold;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.InterceptedStore;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.kfold.store.StoreException;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.assertj.core.api.Assertions.assertThat;

/** The fold runs under the node's supervisor: a failure takes it down for a moment, never for good. */
@ExtendWith(TestBroker.class)
class FoldRestartTest {

  private static final String INJECTED = "injected: the disk is full";

  @Test
  @DisplayName("a store write that fails takes the fold down: /health answers 503 naming it and the error, then the fold"
      + " opens again from the store's offsets, and the writes made after the failure are applied exactly once")
  void foldRestartsAfterAFailedWrite() throws Exception {
    AtomicBoolean failing = new AtomicBoolean();
    NodeRuntime.Options faultyStore = NodeRuntime.Options.DEFAULTS.withStore(store -> new InterceptedStore(store, batch -> {
      if (failing.get()) {
        throw new StoreException(INJECTED, null);
      }
    }));
    NodeConfig config = TestNodes.config(TestNodes.newApp("restart"), TestNodes.tempDir("restart"));
    Vertx vertx = Vertx.vertx();
    WebClient client = WebClient.create(vertx);
    try {
      NodeRuntime node = NodeRuntime.start(vertx, config, faultyStore).await(60, TimeUnit.SECONDS);
      TestNodes.awaitCaughtUp(node);
      assertThat(append(client, node, 1).status()).isEqualTo(200);

      failing.set(true);
      // Its event is the next thing the fold writes: that write fails.
      Future<HttpResponse<Buffer>> duringFailure = client.post(node.httpPort(), "127.0.0.1", "/v1/users/w/events")
          .sendBuffer(Buffer.buffer(events(2)));
      JsonNode down = awaitHealth(client, node, 503);
      assertThat(down.path("detail").asText()).contains("fold").contains(INJECTED);

      failing.set(false);
      JsonNode up = awaitHealth(client, node, 200);
      assertThat(down.path("loops").path("fold").path("state").asText()).isEqualTo("DOWN");
      assertThat(up.path("loops").path("fold").path("restarts").asInt()).isPositive();
      HttpResponse<Buffer> answer = duringFailure.await(30, TimeUnit.SECONDS);
      assertThat(answer.statusCode()).as("answer to the write that met the failure: %s", answer.bodyAsString())
          .isEqualTo(200);
      assertThat(answer.bodyAsJsonObject().getLong("version")).isEqualTo(2);
      Reply after = append(client, node, 3);
      assertThat(after.status()).isEqualTo(200);
      assertThat(after.body().path("version").asLong()).isEqualTo(3);

      JsonNode history = TestNodes.call(client, HttpMethod.GET, node.httpPort(), "/v1/users/w/events", null, Map.of())
          .body().path("events");
      List<String> folded = new ArrayList<>();
      history.forEach(e -> folded.add(e.path("version").asLong() + ":" + e.path("payload").path("n").asInt()));
      assertThat(folded).as("the entity's history: each write once, in order").containsExactly("1:1", "2:2", "3:3");
      node.stop().await(60, TimeUnit.SECONDS);
    } finally {
      client.close();
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  private static String events(int n) {
    return "{\"events\":[{\"type\":\"Renamed\",\"payload\":{\"n\":" + n + "}}]}";
  }

  private static Reply append(WebClient client, NodeRuntime node, int n) throws Exception {
    return TestNodes.call(client, HttpMethod.POST, node.httpPort(), "/v1/users/w/events", events(n), Map.of());
  }

  private static JsonNode awaitHealth(WebClient client, NodeRuntime node, int status) throws Exception {
    long deadline = System.currentTimeMillis() + 60_000;
    Reply last;
    do {
      last = TestNodes.call(client, HttpMethod.GET, node.httpPort(), "/health", null, Map.of());
      if (last.status() == status) {
        return last.body();
      }
      Thread.sleep(20);
    } while (System.currentTimeMillis() < deadline);
    throw new AssertionError("/health answered " + last.status() + " " + last.body() + ", not " + status + ", within 60 s");
  }
}
