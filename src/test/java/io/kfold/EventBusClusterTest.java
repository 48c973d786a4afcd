package io.kfold;

import io.kfold.config.NodeConfig;
import io.kfold.http.TestCa;
import io.kfold.log.LocalBroker;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.eventbus.ReplyFailure;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/** {@code eventBus.cluster}: how it is configured, refused and shown, and its mutual TLS between JVMs. */
class EventBusClusterTest {

  private static Map<String, String> clusterEnv(String host, String members) {
    Map<String, String> env = new HashMap<>();
    env.put("KFOLD_EVENT_BUS_CLUSTER_ENABLED", "true");
    env.put("KFOLD_EVENT_BUS_CLUSTER_HOST", host);
    env.put("KFOLD_EVENT_BUS_CLUSTER_MEMBERS", members);
    return env;
  }

  @Test
  @DisplayName("a cluster on an address other machines reach is refused without TLS, saying why and what to set")
  void nonLoopbackHostNeedsTls() {
    ConfigCommandsTest.Run refused = ConfigCommandsTest.command(clusterEnv("10.1.2.3", "10.1.2.4:5701"), "--check-config");
    assertThat(refused.status()).as(refused.out()).isEqualTo(Main.INVALID_CONFIGURATION);
    assertThat(refused.err()).contains("'eventBus.cluster.host'", "'10.1.2.3'", "not a loopback address",
        "without credentials", "eventBus.cluster.tls");

    Map<String, String> withTls = clusterEnv("10.1.2.3", "10.1.2.4:5701");
    withTls.put("KFOLD_EVENT_BUS_CLUSTER_TLS_CERTIFICATE", "/etc/kfold/member.pem");
    withTls.put("KFOLD_EVENT_BUS_CLUSTER_TLS_KEY", "/etc/kfold/member-key.pem");
    withTls.put("KFOLD_EVENT_BUS_CLUSTER_TLS_TRUST", "/etc/kfold/cluster-ca.pem");
    ConfigCommandsTest.Run accepted = ConfigCommandsTest.command(withTls, "--check-config");
    assertThat(accepted.status()).as(accepted.err()).isZero();

    // Without the cluster, its host is not used and not checked.
    Map<String, String> disabled = clusterEnv("10.1.2.3", "");
    disabled.put("KFOLD_EVENT_BUS_CLUSTER_ENABLED", "false");
    assertThat(ConfigCommandsTest.command(disabled, "--check-config").status()).isZero();

    Map<String, String> halfTls = clusterEnv("127.0.0.1", "");
    halfTls.put("KFOLD_EVENT_BUS_CLUSTER_TLS_CERTIFICATE", "/etc/kfold/member.pem");
    ConfigCommandsTest.Run half = ConfigCommandsTest.command(halfTls, "--check-config");
    assertThat(half.err()).contains("'eventBus.cluster.tls'", "all three");

    ConfigCommandsTest.Run badMember = ConfigCommandsTest.command(clusterEnv("127.0.0.1", "127.0.0.1:5701,node-b"),
        "--check-config");
    assertThat(badMember.err()).contains("'eventBus.cluster.members'", "'node-b' is not host:port");
  }

  @Test
  @DisplayName("--print-config shows the cluster's settings, the members from a variable as a list, the name defaulting to the app")
  void printConfigShowsTheCluster() {
    Map<String, String> env = clusterEnv("127.0.0.1", "127.0.0.1:5701, 127.0.0.1:5702");
    env.put("KFOLD_EVENT_BUS_CLUSTER_PORT", "5702");
    ConfigCommandsTest.Run run = ConfigCommandsTest.command(env, "--print-config");
    assertThat(run.status()).as(run.err()).isZero();
    assertThat(run.out()).contains("eventBus:\n  cluster:\n    enabled: \"true\"\n    host: 127.0.0.1\n    port: 5702\n"
        + "    members: \"127.0.0.1:5701, 127.0.0.1:5702\"\n");
    NodeConfig.EventBus.Cluster cluster = NodeConfig.load(env).eventBus().cluster();
    assertThat(cluster.members()).containsExactly("127.0.0.1:5701", "127.0.0.1:5702");
    assertThat(cluster.name()).isEqualTo("kfold");
    assertThat(NodeConfig.load(Map.of()).eventBus().cluster().enabled()).isFalse();
  }

  @Test
  @DisplayName("with TLS, members whose certificate the cluster's CA signed talk over the bus; a JVM that joins"
      + " Hazelcast and trusts the CA, but holds another CA's certificate, gets no message through")
  void mutualTlsBetweenMembers() throws Exception {
    Path dir = TestNodes.tempDir("bus-tls");
    TestCa ca = TestCa.create("kfold-cluster-ca");
    ca.writeCertificate(dir.resolve("ca.pem"));
    ca.issue("member-a").writeTo(dir.resolve("a.pem"), dir.resolve("a-key.pem"));
    ca.issue("member-b").writeTo(dir.resolve("b.pem"), dir.resolve("b-key.pem"));
    TestCa.create("another-ca").issue("stranger").writeTo(dir.resolve("s.pem"), dir.resolve("s-key.pem"));
    List<Integer> ports = List.of(LocalBroker.freePort(), LocalBroker.freePort(), LocalBroker.freePort());
    String members = "127.0.0.1:" + ports.get(0) + ",127.0.0.1:" + ports.get(1) + ",127.0.0.1:" + ports.get(2);
    String app = TestNodes.newApp("bus-tls");

    List<Vertx> joined = new ArrayList<>();
    try {
      Vertx a = join(joined, app, ports.get(0), members, dir, "a");
      a.eventBus().<JsonObject>consumer("test.echo", m -> m.reply(m.body())).completion().await(30, TimeUnit.SECONDS);
      Vertx b = join(joined, app, ports.get(1), members, dir, "b");
      Vertx stranger = join(joined, app, ports.get(2), members, dir, "s");

      JsonObject echoed = b.eventBus().<JsonObject>request("test.echo", new JsonObject().put("from", "b"),
              new DeliveryOptions().setSendTimeout(30_000))
          .await(30, TimeUnit.SECONDS).body();
      assertThat(echoed.getString("from")).isEqualTo("b");
      // Several times as long as the member's message took, TLS handshake included, on a busy machine.
      Throwable refused = stranger.eventBus().request("test.echo", new JsonObject().put("from", "stranger"),
              new DeliveryOptions().setSendTimeout(10_000))
          .transform(ar -> Future.succeededFuture(ar.failed() ? ar.cause() : null)).await(30, TimeUnit.SECONDS);
      // Its handshake is refused, so its message is never delivered: no reply comes, whatever the wait.
      assertThat(refused).as("what the stranger's request got (a reply means it got through)").isInstanceOf(ReplyException.class);
      assertThat(((ReplyException) refused).failureType()).isEqualTo(ReplyFailure.TIMEOUT);
    } finally {
      for (Vertx vertx : joined) {
        vertx.close().await(30, TimeUnit.SECONDS);
      }
    }
  }

  private static Vertx join(List<Vertx> joined, String app, int port, String members, Path dir, String member)
      throws Exception {
    Map<String, String> env = clusterEnv("127.0.0.1", members);
    env.put("KFOLD_APP", app);
    env.put("KFOLD_EVENT_BUS_CLUSTER_PORT", Integer.toString(port));
    env.put("KFOLD_EVENT_BUS_CLUSTER_TLS_CERTIFICATE", dir.resolve(member + ".pem").toString());
    env.put("KFOLD_EVENT_BUS_CLUSTER_TLS_KEY", dir.resolve(member + "-key.pem").toString());
    env.put("KFOLD_EVENT_BUS_CLUSTER_TLS_TRUST", dir.resolve("ca.pem").toString());
    Vertx vertx = EventBusCluster.join(KfoldConfig.load(env)).await(60, TimeUnit.SECONDS);
    joined.add(vertx);
    return vertx;
  }
}
