package io.kfold.effects;

/** Runs an action later on the worker's event loop; tests move time by hand. */
@FunctionalInterface
interface Timer {

  /** Answers what cancels it. */
  Runnable schedule(long delayMs, Runnable action);
}
