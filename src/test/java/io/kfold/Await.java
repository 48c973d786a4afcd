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
    long deadline = System.currentTimeMillis() + 60_000;
    while (!condition.holds()) {
      if (System.currentTimeMillis() > deadline) {
        throw new AssertionError("not within 60 s: " + what);
      }
      Thread.sleep(20);
    }
  }
}
