package io.kfold.command;

import io.kfold.ContendedOrders;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.vertx.core.Vertx;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * 32 clients hammer 10 orders with commands carrying If-Match, each reading the order's version
 * first. The log itself is checked afterwards, not only the answers.
 */
@ExtendWith(TestBroker.class)
class ConcurrentCommandsTest {

  @Test
  @DisplayName("32 clients, 10 orders, If-Match: contiguous versions, no version twice, every 200 in the log once, every 409 appended nothing")
  void hammerTheSameOrders() throws Exception {
    Vertx vertx = Vertx.vertx();
    NodeConfig config = TestNodes.config(TestNodes.newApp("hammer"), TestNodes.tempDir("hammer"));
    NodeRuntime node = TestNodes.startCaughtUp(vertx, config);
    ContendedOrders orders = new ContendedOrders(vertx, List.of(node.httpPort()));
    try {
      orders.place();
      ContendedOrders.assertLogAgrees(orders.run(), config.eventsTopic("orders"));
    } finally {
      orders.close();
      node.stop().await(60, TimeUnit.SECONDS);
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }
}
