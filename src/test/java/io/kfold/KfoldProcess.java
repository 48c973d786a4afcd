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

/** kfold as a separate process, as an operator runs it: for tests that kill it with SIGKILL. */
public final class KfoldProcess {

  private final Map<String, String> env;
  private final Path log;
  private final int port;
  private Process process;

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
    ProcessBuilder builder = new ProcessBuilder(java, "-Xmx512m", "-cp", System.getProperty("java.class.path"),
        Main.class.getName())
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

  /** SIGTERM, and waits for the clean stop. */
  public void stop() throws InterruptedException {
    process.destroy();
    assertThat(process.waitFor(60, TimeUnit.SECONDS)).as("kfold stops on SIGTERM; see %s", log).isTrue();
  }

  /** Stops it cleanly if it still runs; for test clean-up. */
  public void stopIfAlive() throws InterruptedException {
    if (process != null && process.isAlive()) {
      stop();
    }
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
