package io.kfold.fold;

import io.kfold.log.ConsumerLoop;
import io.kfold.query.IndexBuilds;

/**
 * Runs the node's index builds ({@link IndexBuilds}) under the supervisor, on a thread of its own
 * beside the fold's, a chunk per round; once none is left it only waits to be stopped (the declared
 * indexes change with a restart only).
 */
final class IndexBuildLoop implements ConsumerLoop {

  private final IndexBuilds builds;
  private final Object idle = new Object();
  private volatile boolean wakeup;
  private boolean done;

  IndexBuildLoop(IndexBuilds builds) {
    this.builds = builds;
  }

  @Override
  public void open() {
    done = false;
  }

  @Override
  public void runOnce() {
    if (!done) {
      done = !builds.buildChunk();
      return;
    }
    synchronized (idle) {
      if (!wakeup) {
        try {
          idle.wait(1000);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
      wakeup = false;
    }
  }

  @Override
  public void wakeup() {
    synchronized (idle) {
      wakeup = true;
      idle.notifyAll();
    }
  }

  @Override
  public void close(boolean stopping) {
  }
}
