package io.kfold.log;

import org.apache.kafka.common.errors.InterruptException;
import org.apache.kafka.common.errors.RetriableException;
import org.apache.kafka.common.errors.WakeupException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Runs every consumer loop of a node (the fold, each side-effect worker, the node directory), each
 * on a thread of its own, and keeps them running: a retriable Kafka error retries the round after a
 * backoff; any other failure closes the loop and opens it again after a backoff, so that it resumes
 * from its store's offsets. {@link #loops()} says which loop is down and why, for {@code /health}.
 */
public final class Supervisor {

  private static final Logger LOG = LoggerFactory.getLogger(Supervisor.class);

  /** Where a loop is. {@code RETRYING}: its last round failed with a retriable error and it will try again. */
  public enum State { STARTING, UP, RETRYING, DOWN, STOPPED }

  /**
   * A loop as {@code /health} shows it.
   *
   * @param since     when it entered its state
   * @param lastError the last error, null while it has none
   * @param restarts  how often it was opened again after a failure
   */
  public record Status(String name, State state, Instant since, String lastError, int restarts) {
    /** Down: a failure closed it and it has not come back yet. */
    public boolean down() {
      return state == State.DOWN;
    }
  }

  private final Clock clock;
  private final Duration firstBackoff;
  private final Duration maxBackoff;
  private final Map<String, Running> loops = new ConcurrentHashMap<>();

  public Supervisor(Clock clock, Duration firstBackoff, Duration maxBackoff) {
    this.clock = clock;
    this.firstBackoff = firstBackoff;
    this.maxBackoff = maxBackoff;
  }

  /** The longest backoff after a failure that a retriable Kafka error caused. */
  static final Duration UNREACHABLE_MAX_BACKOFF = Duration.ofSeconds(1);

  /** Backoffs from 100 ms up to 30 s (1 s when Kafka was unreachable). */
  public Supervisor() {
    this(Clock.systemUTC(), Duration.ofMillis(100), Duration.ofSeconds(30));
  }

  /** Starts the loop on a new thread named {@code kfold-<name>}; {@code name} must be unique in this supervisor. */
  public Running start(String name, ConsumerLoop loop) {
    Running running = new Running(name, loop);
    if (loops.putIfAbsent(name, running) != null) {
      throw new IllegalArgumentException("a loop named " + name + " runs already");
    }
    running.thread.start();
    return running;
  }

  /** Every loop's status, by name, in name order. */
  public Map<String, Status> loops() {
    Map<String, Status> statuses = new LinkedHashMap<>();
    loops.keySet().stream().sorted().forEach(name -> {
      Running running = loops.get(name);
      if (running != null) {
        statuses.put(name, running.status);
      }
    });
    return statuses;
  }

  /**
   * The pause before the next try: doubling with each failure in a row, up to the maximum; up to
   * {@link #UNREACHABLE_MAX_BACKOFF} only when Kafka itself failed the loop in a way that passes
   * (a broker gone, restarting, a coordinator loading), so that the loop is back within a second of
   * the broker instead of sleeping out a backoff that grew while it was gone.
   */
  long backoffMillis(int failuresInARow, Throwable cause) {
    long millis = firstBackoff.toMillis() << Math.min(failuresInARow - 1, 20);
    long max = passing(cause) ? Math.min(maxBackoff.toMillis(), UNREACHABLE_MAX_BACKOFF.toMillis()) : maxBackoff.toMillis();
    return Math.min(max, Math.max(1, millis));
  }

  /** Whether a retriable Kafka error is the failure or its cause, at any depth. */
  static boolean passing(Throwable failure) {
    for (Throwable t = failure; t != null; t = t.getCause() == t ? null : t.getCause()) {
      if (t instanceof RetriableException) {
        return true;
      }
    }
    return false;
  }

  /** One supervised loop and its thread. */
  public final class Running {
    private final String name;
    private final ConsumerLoop loop;
    private final Thread thread;
    private final Object sleeper = new Object();
    private volatile boolean running = true;
    private volatile Status status;
    private int restarts;

    private Running(String name, ConsumerLoop loop) {
      this.name = name;
      this.loop = loop;
      this.status = new Status(name, State.STARTING, clock.instant(), null, 0);
      this.thread = new Thread(this::run, "kfold-" + name);
    }

    public Status status() {
      return status;
    }

    /**
     * Stops the loop: it finishes its round, closes its clients and ends. Blocks up to {@code timeout}
     * for that; answers false when the thread is still running then.
     */
    public boolean stop(Duration timeout) throws InterruptedException {
      running = false;
      synchronized (sleeper) {
        sleeper.notifyAll();
      }
      loop.wakeup();
      thread.join(timeout.toMillis());
      if (thread.isAlive()) {
        LOG.warn("loop {} did not stop within {}", name, timeout);
        return false;
      }
      loops.remove(name, this);
      return true;
    }

    private void run() {
      int failuresInARow = 0;
      Throwable lastFailure = null;
      while (running) {
        boolean failed = false;
        try {
          loop.open();
          while (running) {
            try {
              loop.runOnce();
              if (status.state() != State.UP) {
                enter(State.UP, status.lastError());
                if (failuresInARow > 0) {
                  LOG.info("loop {} runs again", name);
                }
              }
              failuresInARow = 0;
            } catch (WakeupException e) {
              // a wakeup meant to stop the loop, or one the loop used for itself: check and go on
            } catch (RetriableException e) {
              failuresInARow++;
              enter(State.RETRYING, e.toString());
              LOG.warn("loop {}: {}; trying again in {} ms", name, e.toString(), backoffMillis(failuresInARow, e));
              pause(backoffMillis(failuresInARow, e));
            }
          }
        } catch (WakeupException | InterruptException e) {
          if (running) {
            failed = true;
            failuresInARow++;
            lastFailure = e;
            down(e);
          }
        } catch (RuntimeException | Error e) {
          failed = true;
          failuresInARow++;
          lastFailure = e;
          down(e);
        } finally {
          try {
            loop.close(!running);
          } catch (RuntimeException e) {
            LOG.warn("loop {}: closing failed: {}", name, e.toString());
          }
        }
        if (failed && running) {
          restarts++;
          pause(backoffMillis(failuresInARow, lastFailure));
        }
      }
      enter(State.STOPPED, status.lastError());
    }

    private void down(Throwable e) {
      enter(State.DOWN, e.toString());
      LOG.error("loop {} failed and restarts after a backoff: {}", name, e.toString(), e);
    }

    private void enter(State state, String lastError) {
      status = new Status(name, state, clock.instant(), lastError, restarts);
    }

    private void pause(long millis) {
      synchronized (sleeper) {
        if (!running) {
          return;
        }
        try {
          sleeper.wait(millis);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          running = false;
        }
      }
    }
  }
}
