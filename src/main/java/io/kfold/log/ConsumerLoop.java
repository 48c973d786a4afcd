package io.kfold.log;

/**
 * A loop around Kafka clients that a {@link Supervisor} runs on a thread of its own. Every method
 * but {@link #wakeup} is called on that thread, so the loop's consumer is touched by one thread.
 *
 * <p>After a failure the supervisor calls {@link #close} and later {@link #open} again: a loop keeps
 * nothing across a restart that it cannot rebuild from its store or its topics.
 */
public interface ConsumerLoop {

  /** Creates the loop's clients and subscribes; called before the first round and after each restart. */
  void open();

  /** One round: poll, process, commit. Throws to have the supervisor retry or restart the loop. */
  void runOnce();

  /**
   * Makes a blocking {@link #runOnce} return soon (a consumer's {@code wakeup()}); called from another
   * thread, at any time: also after {@link #close}.
   */
  void wakeup();

  /**
   * Closes what {@link #open} created. Also called after a failed open or round, so it copes with
   * clients that were never created. {@code stopping} is false when the loop will be opened again.
   */
  void close(boolean stopping);
}
