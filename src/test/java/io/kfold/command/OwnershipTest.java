package io.kfold.command;

import io.kfold.KfoldConfig;
import io.kfold.KfoldNode;
import io.kfold.TestBroker;
import io.kfold.TestLog;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.WebClient;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/** Two nodes share the partitions: a write is decided only by the node that folds its entity. */
@ExtendWith(TestBroker.class)
class OwnershipTest {

  @Test
  @DisplayName("with two nodes, the owner of an entity's partition takes its writes; the other answers 503 and appends nothing")
  void onlyTheOwnerWrites() throws Exception {
    Vertx vertx = Vertx.vertx();
    String app = TestNodes.newApp("owners");
    KfoldConfig first = TestNodes.config(app, TestNodes.tempDir("owner-a"));
    KfoldConfig second = TestNodes.config(app, TestNodes.tempDir("owner-b"));
    KfoldNode a = KfoldNode.start(vertx, first).await(60, TimeUnit.SECONDS);
    KfoldNode b = KfoldNode.start(vertx, second).await(60, TimeUnit.SECONDS);
    WebClient client = WebClient.create(vertx);
    try {
      // Wait until the group has split the partitions between the two.
      long deadline = System.currentTimeMillis() + 60_000;
      while (!(a.progress().caughtUp() && b.progress().caughtUp() && !a.progress().lag().isEmpty()
          && !b.progress().lag().isEmpty() && a.progress().lag().size() + b.progress().lag().size() == 12)) {
        assertThat(System.currentTimeMillis()).as("two nodes share the partitions").isLessThan(deadline);
        Thread.sleep(50);
      }
      int owned = 0;
      for (int i = 0; i < 20; i++) {
        String key = "u" + i;
        Reply onA = TestNodes.call(client, HttpMethod.POST, a.httpPort(), "/v1/users/" + key + "/events",
            "{\"events\":[{\"type\":\"Created\",\"payload\":{\"by\":\"a\"}}]}", Map.of());
        Reply onB = TestNodes.call(client, HttpMethod.POST, b.httpPort(), "/v1/users/" + key + "/events",
            "{\"events\":[{\"type\":\"Created\",\"payload\":{\"by\":\"b\"}}]}", Map.of());
        assertThat(Map.of(onA.status(), 1, onB.status(), 1)).as("one 200 and one 503 for %s", key)
            .containsOnlyKeys(200, 503);
        Reply refused = onA.status() == 503 ? onA : onB;
        assertThat(refused.body().path("detail").asText()).contains("does not fold");
        owned += onA.status() == 200 ? 1 : 0;
        assertThat(TestLog.events(first.eventsTopic("users"), key)).as("events of %s in the log", key).hasSize(1);
      }
      assertThat(owned).as("both nodes own some entities").isBetween(1, 19);
    } finally {
      client.close();
      a.stop().await(60, TimeUnit.SECONDS);
      b.stop().await(60, TimeUnit.SECONDS);
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }
}
