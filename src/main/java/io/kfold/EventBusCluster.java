package io.kfold;

import com.hazelcast.config.Config;
import com.hazelcast.config.JoinConfig;
import com.hazelcast.config.MapConfig;
import com.hazelcast.config.MultiMapConfig;
import com.hazelcast.config.NetworkConfig;
import io.kfold.config.NodeConfig;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.kfold.node.NodeMetrics;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.eventbus.EventBusOptions;
import io.vertx.core.http.ClientAuth;
import io.vertx.core.net.PemKeyCertOptions;
import io.vertx.core.net.PemTrustOptions;
import io.vertx.spi.cluster.hazelcast.HazelcastClusterManager;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * A clustered Vert.x on the settings of {@code eventBus.cluster}: what kfold runs on when the cluster
 * is enabled, and what another JVM joins to send to kfold's addresses and follow its changes.
 *
 * <pre>{@code
 * KfoldConfig config = KfoldConfig.load(System.getenv());  // eventBus.cluster enabled, members set
 * EventBusCluster.join(config).onSuccess(vertx -> vertx.eventBus().request("kfold.orders.get", ...));
 * }</pre>
 *
 * Hazelcast is configured here, in code: no hazelcast.xml is looked for, members are found over
 * TCP/IP only (multicast and cloud discovery off), it binds to {@code host} alone, and it never
 * phones home.
 */
public final class EventBusCluster {

  private static final Logger LOG = LoggerFactory.getLogger(EventBusCluster.class);

  private EventBusCluster() {}

  /**
   * A Vert.x instance that joined the cluster, or a failure naming what is wrong; the caller owns it
   * and closes it, which leaves the cluster.
   */
  public static Future<Vertx> join(KfoldConfig config) {
    return join(config.node());
  }

  /** The same, for kfold's own start: without metrics when {@code registry} is null. */
  static Future<Vertx> join(NodeConfig config) {
    return join(config, null);
  }

  /** The same, the instance's HTTP server metrics reported into {@code registry} (see {@link NodeMetrics#vertxBuilder}). */
  static Future<Vertx> join(NodeConfig config, PrometheusMeterRegistry registry) {
    NodeConfig.EventBus.Cluster cluster = config.eventBus().cluster();
    if (!cluster.enabled()) {
      return Future.failedFuture(new IllegalArgumentException("configuration: 'eventBus.cluster.enabled' is false:"
          + " there is no cluster to join"));
    }
    EventBusOptions bus = new EventBusOptions().setHost(cluster.host()).setPort(0).setClusterPublicHost(cluster.host());
    if (cluster.tls().enabled()) {
      for (String file : List.of(cluster.tls().certificate(), cluster.tls().key(), cluster.tls().trust())) {
        if (!Files.isReadable(Path.of(file))) {
          return Future.failedFuture(new IllegalArgumentException("configuration: 'eventBus.cluster.tls': cannot read "
              + file));
        }
      }
      bus.setSsl(true)
          .setKeyCertOptions(new PemKeyCertOptions().setCertPath(cluster.tls().certificate())
              .setKeyPath(cluster.tls().key()))
          .setTrustOptions(new PemTrustOptions().addCertPath(cluster.tls().trust()))
          .setClientAuth(ClientAuth.REQUIRED);
    }
    HazelcastClusterManager manager = new HazelcastClusterManager(hazelcast(cluster));
    VertxOptions options = new VertxOptions().setEventBusOptions(bus);
    return (registry == null ? Vertx.builder().with(options) : NodeMetrics.vertxBuilder(options, registry))
        .withClusterManager(manager)
        .buildClustered()
        .onSuccess(vertx -> LOG.info("joined the event bus cluster '{}' as {} (event bus {}{}); members {}",
            cluster.name(), manager.getHazelcastInstance().getCluster().getLocalMember().getAddress(),
            cluster.host(), cluster.tls().enabled() ? ", mutual TLS" : "",
            manager.getHazelcastInstance().getCluster().getMembers().stream().map(m -> m.getAddress().toString()).toList()));
  }

  private static Config hazelcast(NodeConfig.EventBus.Cluster cluster) {
    Config config = new Config();
    config.setClusterName(cluster.name());
    config.setProperty("hazelcast.phone.home.enabled", "false");
    config.setProperty("hazelcast.logging.type", "slf4j");
    // Only the configured address, not every interface of the machine.
    config.setProperty("hazelcast.socket.bind.any", "false");
    // Vert.x leaves the cluster when it is closed (kfold's own shutdown hook); Hazelcast leaving first would
    // cut the node off while it still hands its work over.
    config.setProperty("hazelcast.shutdownhook.enabled", "false");
    // A kfold cluster has a few members: the oldest takes in those that ask to join together within a
    // second or two, instead of Hazelcast's 5 s and up to 20 s, made for large clusters.
    config.setProperty("hazelcast.wait.seconds.before.join", "1");
    config.setProperty("hazelcast.max.wait.seconds.before.join", "2");
    NetworkConfig network = config.getNetworkConfig();
    network.setPort(cluster.port()).setPortAutoIncrement(false);
    network.getInterfaces().setEnabled(true).addInterface(cluster.host());
    JoinConfig join = network.getJoin();
    join.getMulticastConfig().setEnabled(false);
    join.getAutoDetectionConfig().setEnabled(false);
    join.getTcpIpConfig().setEnabled(true).setMembers(cluster.members());
    // What vertx-hazelcast's default configuration declares for its own maps: without them a member's
    // consumers and node information would have no backup on another member.
    config.addMultiMapConfig(new MultiMapConfig("__vertx.subs").setBackupCount(1)
        .setValueCollectionType(MultiMapConfig.ValueCollectionType.SET));
    config.addMapConfig(new MapConfig("__vertx.haInfo").setBackupCount(1));
    config.addMapConfig(new MapConfig("__vertx.nodeInfo").setBackupCount(1));
    return config;
  }
}
