package io.kfold;

import io.kfold.TestNodes.Reply;
import io.kfold.node.NodeRuntime;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.WebClient;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

@ExtendWith(TestBroker.class)
class CleanupTest {


  @Test
  @DisplayName("after a node stops, no Kafka client thread is left and the store is closed")
  void nothingLeftOpen() throws Exception {
    Vertx vertx = Vertx.vertx();
    String app = TestNodes.newApp("cleanup");
    NodeRuntime node = TestNodes.startCaughtUp(vertx, TestNodes.config(app, TestNodes.tempDir("cleanup")));
    WebClient client = WebClient.create(vertx);
    Reply reply = TestNodes.call(client, HttpMethod.POST, node.httpPort(), "/v1/users/c/events",
        "{\"events\":[{\"type\":\"Created\",\"payload\":{}}]}", Map.of());
    assertThat(reply.status()).isEqualTo(200);
    assertThat(threadsOf(app)).isNotEmpty();

    client.close();
    node.stop().await(60, TimeUnit.SECONDS);
    vertx.close().await(30, TimeUnit.SECONDS);

    long deadline = System.currentTimeMillis() + 10_000;
    while (!threadsOf(app).isEmpty() && System.currentTimeMillis() < deadline) {
      Thread.sleep(50);
    }
    assertThat(threadsOf(app)).isEmpty();
    assertThat(node.store().isOpen()).isFalse();
  }

  /** Every Kafka client thread of a node carries its client id, which starts with the application id. */
  private static List<String> threadsOf(String app) {
    return Thread.getAllStackTraces().keySet().stream().filter(Thread::isAlive).map(Thread::getName)
        .filter(name -> name.contains(app)).toList();
  }
}
