package io.kfold.effects;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayDeque;

/**
 * Stops deliveries while the target is down: after {@code failures} failures in a row it opens for
 * {@code openMs}, then lets one delivery through as a probe; the probe's success closes it, its
 * failure opens it again. Failures while it is not closed cost no attempts.
 */
final class Breaker {

  private static final Logger LOG = LoggerFactory.getLogger(Breaker.class);

  enum State {
    CLOSED("closed"), OPEN("open"), HALF_OPEN("half-open");

    /** As {@code /v1/_effects} shows it. */
    final String label;

    State(String label) {
      this.label = label;
    }
  }

  /** How an attempt was let through. */
  enum Admission { NORMAL, PROBE, WAIT }

  private final String worker;
  private final EffectConfig.Breaker settings;
  private final Timer timer;
  private final EffectStats stats;
  private final ArrayDeque<Runnable> waiting = new ArrayDeque<>();
  private State state = State.CLOSED;
  private int failuresInARow;
  private boolean probing;

  Breaker(String worker, EffectConfig.Breaker settings, Timer timer, EffectStats stats) {
    this.worker = worker;
    this.settings = settings;
    this.timer = timer;
    this.stats = stats;
  }

  State state() {
    return state;
  }

  /** Answers whether the attempt may start now, and whether as the probe; else keeps it until the target answers. */
  Admission admit(Runnable attempt) {
    if (state == State.CLOSED) {
      return Admission.NORMAL;
    }
    if (state == State.HALF_OPEN && !probing) {
      probing = true;
      return Admission.PROBE;
    }
    waiting.add(attempt);
    return Admission.WAIT;
  }

  /** The target answered. */
  void succeeded() {
    failuresInARow = 0;
    if (state != State.CLOSED) {
      enter(State.CLOSED);
      probing = false;
      LOG.info("effect worker {}: the target answers again; resuming {} deliveries", worker, waiting.size());
      while (!waiting.isEmpty()) {
        waiting.poll().run();
      }
    }
  }

  /** Counts a failure; answers whether it counts against the change's attempts. */
  boolean failed(Admission admission) {
    if (admission == Admission.PROBE) {
      probing = false;
      open();
      return false;
    }
    if (state != State.CLOSED) {
      return false;  // the target is known to be down
    }
    if (++failuresInARow >= settings.failures()) {
      LOG.warn("effect worker {}: {} failures in a row; pausing deliveries for {} ms", worker, failuresInARow,
          settings.openMs());
      open();
      return false;
    }
    return true;
  }

  private void open() {
    enter(State.OPEN);
    timer.schedule(settings.openMs(), () -> {
      if (state == State.OPEN) {
        enter(State.HALF_OPEN);
        if (!waiting.isEmpty()) {
          waiting.poll().run();  // it is admitted as the probe
        }
      }
    });
  }

  private void enter(State next) {
    state = next;
    stats.breaker = next;
  }
}
