package io.kfold;

/** Waiting for a condition with a deadline, instead of sleeping a fixed time and hoping. */
public final class Await {

  private Await() {}

  /** A condition that may need to ask a node or a broker. */
  public interface Condition {
    boolean holds() throws Exception;
  }

  /** Waits until {@code condition} holds; fails naming {@code what} after 60 s. */
  public static void until(String what, Condition condition) throws Exception {
    until(what, java.time.Duration.ofSeconds(60), condition);
  }

  /** Waits until {@code condition} holds; fails naming {@code what} after {@code within}. */
  public static void until(String what, java.time.Duration within, Condition condition) throws Exception {
    long deadline = System.currentTimeMillis() + within.toMillis();
    while (!condition.holds()) {
      if (System.currentTimeMillis() > deadline) {
        throw new AssertionError("not within " + within.toSeconds() + " s: " + what);
      }
      Thread.sleep(20);
    }
  }
}
