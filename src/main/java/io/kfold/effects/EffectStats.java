package io.kfold.effects;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.concurrent.atomic.LongAdder;

/** What a worker has done, for {@code /v1/_effects}, {@code /metrics} and its log. */
public final class EffectStats {

  final LongAdder delivered = new LongAdder();
  final LongAdder retried = new LongAdder();
  final LongAdder deadLettered = new LongAdder();
  final LongAdder parked = new LongAdder();
  final LongAdder skipped = new LongAdder();
  /** At-most-once changes a crash or a handover passed over: never started, not delivered. Counted by the next reader. */
  final LongAdder lost = new LongAdder();
  /** At-most-once changes that were running at a crash or a handover: delivered or not. Counted by the next reader. */
  final LongAdder outcomeUnknown = new LongAdder();
  volatile int inFlight;
  volatile int partitions;
  volatile long lag = -1;
  volatile Breaker.State breaker = Breaker.State.CLOSED;
  /** The entities parked now, as the worker's parking lot counts them. */
  volatile java.util.function.IntSupplier parkedEntities = () -> 0;

  /** Whether the breaker is open: no delivery is tried until it half-opens. */
  public boolean breakerOpen() {
    return breaker == Breaker.State.OPEN;
  }

  /** The entities whose changes are parked now, waiting for a replay or a skip. */
  public int parkedEntities() {
    return parkedEntities.getAsInt();
  }

  public ObjectNode toJson() {
    return JsonNodeFactory.instance.objectNode()
        .put("delivered", delivered.sum())
        .put("retried", retried.sum())
        .put("deadLettered", deadLettered.sum())
        .put("parked", parked.sum())
        .put("skipped", skipped.sum())
        .put("lost", lost.sum())
        .put("outcomeUnknown", outcomeUnknown.sum())
        .put("inFlight", inFlight)
        .put("partitions", partitions)
        .put("lag", lag)
        .put("breaker", breaker.label);
  }
}
