package io.kfold;

import io.kfold.TestNodes.Reply;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.WebClient;

import java.util.Map;
import java.util.concurrent.TimeUnit;

/** A node started in this JVM on the test broker, caught up, with an HTTP client: what most tests need. */
public final class RunningNode implements AutoCloseable {

  public final Vertx vertx = Vertx.vertx();
  public final NodeConfig config;
  public final WebClient client = WebClient.create(vertx);
  private NodeRuntime node;

  private RunningNode(NodeConfig config) throws Exception {
    this.config = config;
    this.node = TestNodes.startCaughtUp(vertx, config);
  }

  /** A node with the default configuration and an application id of its own. */
  public static RunningNode start(String name) throws Exception {
    return new RunningNode(TestNodes.config(TestNodes.newApp(name), TestNodes.tempDir(name)));
  }

  public static RunningNode start(NodeConfig config) throws Exception {
    return new RunningNode(config);
  }

  public NodeRuntime node() {
    return node;
  }

  /** Stops the node and starts a new one on the same store and topics. */
  public void restart() throws Exception {
    node.stop().await(60, TimeUnit.SECONDS);
    node = TestNodes.startCaughtUp(vertx, config);
  }

  public Reply call(HttpMethod method, String path, String body, Map<String, String> headers) throws Exception {
    return TestNodes.call(client, method, node.httpPort(), path, body, headers);
  }

  public Reply get(String path) throws Exception {
    return call(HttpMethod.GET, path, null, Map.of());
  }

  public Reply post(String path, String body) throws Exception {
    return call(HttpMethod.POST, path, body, Map.of());
  }

  @Override
  public void close() throws Exception {
    client.close();
    node.stop().await(60, TimeUnit.SECONDS);
    vertx.close().await(30, TimeUnit.SECONDS);
  }
}
