package io.kfold.examples.payments;

import io.kfold.EventBusCluster;
import io.kfold.KfoldConfig;
import io.vertx.core.Vertx;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.concurrent.TimeUnit;

/**
 * {@link PaymentsOnOrders} alone, in a JVM of its own, on the clustered event bus of kfold nodes that
 * run elsewhere: the same verticle as in {@link PaymentsApp}, which knows kfold only by its addresses.
 * The cluster's settings come from the {@code KFOLD_EVENT_BUS_CLUSTER_*} variables, as kfold's do.
 */
public final class PaymentsReactor {

  private static final Logger LOG = LoggerFactory.getLogger(PaymentsReactor.class);

  private PaymentsReactor() {}

  public static void main(String[] args) throws Exception {
    Vertx vertx = EventBusCluster.join(KfoldConfig.load(System.getenv())).await(120, TimeUnit.SECONDS);
    vertx.deployVerticle(new PaymentsOnOrders()).await(30, TimeUnit.SECONDS);
    LOG.info("requesting the payment of each placed order, over the clustered event bus");
    // Closing Vert.x leaves the cluster.
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      try {
        vertx.close().await(30, TimeUnit.SECONDS);
      } catch (Exception e) {
        LOG.warn("leaving the cluster: {}", e.toString());
      }
    }, "payments-reactor-shutdown"));
  }
}
