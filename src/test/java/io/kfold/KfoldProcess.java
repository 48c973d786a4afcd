package io.kfold;

import io.kfold.log.LocalBroker;

import java.io.IOException;
import java.net.HttpURLConnection;
import java.net.URI;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * kfold as a separate process, as an operator runs it: for tests that kill it with SIGKILL or
 * freeze it with SIGSTOP, as a long GC pause or a suspended VM does.
 */
public final class KfoldProcess {

  private final Map<String, String> env;
  private final Path log;
  private final int port;
  private Process process;
  private volatile boolean frozen;

  /** @param env the node's KFOLD_* variables; its HTTP port is chosen here */
  public KfoldProcess(Map<String, String> env, Path log) throws IOException {
    this.env = new HashMap<>(env);
    this.port = LocalBroker.freePort();
    this.env.put("KFOLD_HTTP_PORT", Integer.toString(port));
    this.log = log;
  }

  public int port() {
    return port;
  }

  /** Starts the process and waits until it answers /health. */
  public void start() throws Exception {
    String java = ProcessHandle.current().info().command().orElse("java");
    // C1 only: a node lives for seconds in a test, and most of its start is class loading and
    // first-time compiling, which the optimizing compiler only slows down on a busy machine.
    ProcessBuilder builder = new ProcessBuilder(java, "-Xmx512m", "-XX:TieredStopAtLevel=1",
        "-cp", System.getProperty("java.class.path"), Main.class.getName())
        .redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
    builder.environment().putAll(env);
    process = builder.start();
    awaitStatus("/health", 200);
  }

  /** SIGKILL: no shutdown hook runs, nothing is flushed or closed. */
  public void kill() throws InterruptedException {
    process.destroyForcibly();
    assertThat(process.waitFor(30, TimeUnit.SECONDS)).isTrue();
  }

  /**
   * SIGSTOP: every thread of the node stops where it is, mid-poll or mid-send, until {@link #thaw};
   * its sockets stay open and its heartbeats stop, as in a long GC pause or a suspended VM.
   */
  public void freeze() throws IOException, InterruptedException {
    signal("STOP");
    frozen = true;
  }

  /** SIGCONT: the frozen node goes on from where it stopped, unaware of the time that passed. */
  public void thaw() throws IOException, InterruptedException {
    signal("CONT");
    frozen = false;
  }

  private void signal(String name) throws IOException, InterruptedException {
    assertThat(process.isAlive()).as("kfold runs; see %s", log).isTrue();
    Process kill = new ProcessBuilder("kill", "-" + name, Long.toString(process.pid())).redirectErrorStream(true).start();
    assertThat(kill.waitFor(10, TimeUnit.SECONDS)).as("kill -%s returns", name).isTrue();
    assertThat(kill.exitValue()).as("kill -%s %d: %s", name, process.pid(),
        new String(kill.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8)).isZero();
  }

  /** SIGTERM, and waits for the clean stop. */
  public void stop() throws InterruptedException {
    process.destroy();
    assertThat(process.waitFor(60, TimeUnit.SECONDS)).as("kfold stops on SIGTERM; see %s", log).isTrue();
  }

  /** Stops it cleanly if it still runs, thawing it first if it is frozen; for test clean-up. */
  public void stopIfAlive() throws Exception {
    if (process != null && process.isAlive()) {
      if (frozen) {
        thaw();
      }
      stop();
    }
  }

  /** Sends SIGTERM without waiting: to stop several nodes at once, then {@link #awaitExit}. */
  public void requestStop() {
    process.destroy();
  }

  public void awaitExit() throws InterruptedException {
    assertThat(process.waitFor(60, TimeUnit.SECONDS)).as("kfold stops on SIGTERM; see %s", log).isTrue();
  }

  public void awaitStatus(String path, int status) throws Exception {
    long deadline = System.currentTimeMillis() + 120_000;
    int last = -1;
    while (System.currentTimeMillis() < deadline) {
      assertThat(process.isAlive()).as("kfold exited; see %s", log).isTrue();
      try {
        HttpURLConnection connection = (HttpURLConnection) URI.create("http://127.0.0.1:" + port + path).toURL()
            .openConnection();
        connection.setConnectTimeout(1000);
        connection.setReadTimeout(5000);
        last = connection.getResponseCode();
        connection.disconnect();
        if (last == status) {
          return;
        }
      } catch (IOException notYet) {
        // not listening yet
      }
      Thread.sleep(100);
    }
    throw new AssertionError(path + " answered " + last + ", not " + status + ", within 120 s; see " + log);
  }

  /** The status and body of a GET, whatever the status: for readiness, which answers 503 with a body. */
  public Answer fetch(String path) throws IOException {
    HttpURLConnection connection = (HttpURLConnection) URI.create("http://127.0.0.1:" + port + path).toURL().openConnection();
    connection.setConnectTimeout(1000);
    connection.setReadTimeout(5000);
    try {
      int status = connection.getResponseCode();
      var in = status < 400 ? connection.getInputStream() : connection.getErrorStream();
      String body = in == null ? "" : new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
      return new Answer(status, body);
    } finally {
      connection.disconnect();
    }
  }

  public record Answer(int status, String body) {}

  /** The body of a GET, for status endpoints. */
  public String get(String path) throws IOException {
    HttpURLConnection connection = (HttpURLConnection) URI.create("http://127.0.0.1:" + port + path).toURL().openConnection();
    try (var in = connection.getInputStream()) {
      return new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
    } finally {
      connection.disconnect();
    }
  }

}
