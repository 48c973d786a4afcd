package io.kfold.examples.payments;

import io.kfold.KfoldClient;
import io.kfold.KfoldClient.WriteOptions;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.MessageConsumer;
import io.vertx.core.json.JsonObject;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.concurrent.atomic.AtomicLong;

/**
 * Requests the payment of each placed order: on every {@code OrderPlaced} change that kfold
 * publishes on {@code kfold.orders.changes}, it sends {@code RequestPayment} through the typed
 * {@link KfoldClient} (the event bus's {@code kfold.payments.command}), for the payment keyed by the order's id.
 *
 * <p>The command carries the order event's id as its idempotency key: a change seen twice (the
 * event bus may deliver a change again, for example after the partition moved between nodes)
 * gets the first request's answer and appends nothing, instead of a rejection.
 *
 * <p>The event bus gives the changes of a running node only: a change folded while this verticle
 * is not deployed is never seen by it. A reaction that must never be missed belongs in a side-effect
 * worker of kind {@code command}, which reads the changes topic from its committed offset.
 */
public final class PaymentsOnOrders extends VerticleBase {

  private static final Logger LOG = LoggerFactory.getLogger(PaymentsOnOrders.class);

  /** Orders whose payment request kfold accepted (an idempotent repeat included). */
  private final AtomicLong requested = new AtomicLong();
  /** Orders whose payment request kfold refused or did not answer: logged, each with its reason. */
  private final AtomicLong failed = new AtomicLong();

  private KfoldClient kfold;

  @Override
  public Future<?> start() {
    // The typed client over this Vert.x's event bus: the node may be in this JVM or another of the cluster.
    kfold = KfoldClient.eventBus(vertx);
    MessageConsumer<Buffer> changes = vertx.eventBus().consumer("kfold.orders.changes",
        message -> onChange(message.body().toJsonObject()));
    return changes.completion();
  }

  @Override
  public Future<?> stop() {
    return kfold.close();
  }

  private void onChange(JsonObject change) {
    JsonObject event = change.getJsonObject("event");
    if (!"OrderPlaced".equals(event.getString("type"))) {
      return;
    }
    String orderId = event.getString("key");
    JsonObject payment = new JsonObject()
        .put("orderId", orderId)
        .put("amount", event.getJsonObject("payload").getValue("total"));
    kfold.command("payments", orderId, "RequestPayment", payment,
            WriteOptions.NONE.withIdempotencyKey(event.getString("id")))
        .onSuccess(written -> {
          requested.incrementAndGet();
          LOG.info("payment of order {} requested (version {})", orderId, written.version());
        })
        .onFailure(e -> {
          failed.incrementAndGet();
          LOG.warn("payment of order {} not requested: {}", orderId, e.getMessage());
        });
  }

  /** How many payment requests kfold accepted. */
  public long requested() {
    return requested.get();
  }

  /** How many payment requests failed (refused by the payment's rules, or unanswered). */
  public long failed() {
    return failed.get();
  }
}
