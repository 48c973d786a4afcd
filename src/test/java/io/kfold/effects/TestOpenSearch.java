package io.kfold.effects;

import io.kfold.log.LocalBroker;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * One real OpenSearch node for the whole test run, started from the distribution the build unpacks
 * into {@code target/opensearch/} (no Docker). Tests only see {@link #url()}.
 *
 * <p>Each run works on a fresh copy of the distribution, so the unpacked one is never modified.
 * OpenSearch refuses to run as root; when the tests do, the copy is handed to {@code nobody} and the
 * node runs as that user.
 */
public final class TestOpenSearch implements BeforeAllCallback {

  private static final String VERSION = "2.19.6";
  /** Where the unpacked distribution is; relative paths are resolved against the project folder. */
  public static final String DIST_PROPERTY = "kfold.opensearch.dist";
  private static final String CLUSTER = "kfold-test";
  private static final Duration START_TIMEOUT = Duration.ofSeconds(90);
  private static final Duration STOP_GRACE = Duration.ofSeconds(20);
  private static final int LOG_TAIL_LINES = 40;

  private static volatile String url;
  private static RuntimeException startFailure;

  // The running node; guarded by STOP_LOCK, which a shutdown hook may take while a start is under way.
  private static final Object STOP_LOCK = new Object();
  private static Path dir;
  private static Path pidFile;
  private static boolean launched;
  private static boolean stopped;
  private static ProcessHandle process;

  @Override
  public void beforeAll(ExtensionContext context) throws Exception {
    synchronized (TestOpenSearch.class) {
      if (startFailure != null) {
        // Do not wait out the start timeout again for every test class.
        throw new IllegalStateException("OpenSearch failed to start earlier in this run", startFailure);
      }
      if (url == null) {
        context.getRoot().getStore(ExtensionContext.Namespace.GLOBAL)
            .put("kfold-test-opensearch", (ExtensionContext.Store.CloseableResource) TestOpenSearch::stop);
        // Also when the test JVM is stopped from outside: the node is a daemon and would outlive it.
        Runtime.getRuntime().addShutdownHook(new Thread(TestOpenSearch::stop, "kfold-test-opensearch-stop"));
        try {
          url = start();
        } catch (Exception e) {
          startFailure = e instanceof RuntimeException r ? r : new IllegalStateException("OpenSearch did not start", e);
          stop();
          throw startFailure;
        }
      }
    }
  }

  /** The node's HTTP address, e.g. {@code http://127.0.0.1:40123}. */
  public static String url() {
    if (url == null) {
      throw new IllegalStateException("annotate the test class with @ExtendWith(TestOpenSearch.class)");
    }
    return url;
  }

  private static String start() throws IOException, InterruptedException {
    Path dist = Path.of(System.getProperty(DIST_PROPERTY, "target/opensearch/opensearch-" + VERSION)).toAbsolutePath();
    if (!Files.isRegularFile(dist.resolve("bin/opensearch"))) {
      throw new IllegalStateException("no OpenSearch distribution at " + dist + ": run the build up to"
          + " generate-test-resources (it unpacks one there) or set -D" + DIST_PROPERTY + "=<folder>");
    }
    boolean root = "root".equals(System.getProperty("user.name"));
    // As root the node runs as nobody, who must be able to reach its folder: a temp folder elsewhere
    // (e.g. under /root) may not be traversable, and createTempDirectory makes it owner-only.
    Path parent = root ? Path.of("/tmp") : Path.of(System.getProperty("java.io.tmpdir"));
    Path work = Files.createTempDirectory(parent, "kfold-test-opensearch-");
    Files.setPosixFilePermissions(work, PosixFilePermissions.fromString("rwxr-xr-x"));
    Path home = work.resolve("opensearch");
    copyTree(dist, home);
    Path console = work.resolve("console.log");
    synchronized (STOP_LOCK) {
      dir = work;
      pidFile = home.resolve("opensearch.pid");
    }

    int httpPort = LocalBroker.freePort();
    int transportPort = LocalBroker.freePort();
    List<String> yml = new ArrayList<>(List.of(
        "cluster.name: " + CLUSTER,
        "discovery.type: single-node",
        "network.host: 127.0.0.1",
        "http.port: " + httpPort,
        "transport.port: " + transportPort,
        "path.data: '" + home.resolve("data") + "'",
        "path.logs: '" + home.resolve("logs") + "'",
        // A nearly full disk on a build machine would otherwise leave new shards unassigned.
        "cluster.routing.allocation.disk.threshold_enabled: false"));
    if (Files.isDirectory(home.resolve("plugins/opensearch-security"))) {
      // Only a full distribution has it (the setting is unknown, hence fatal, without the plugin).
      yml.add("plugins.security.disabled: true");
    }
    Files.write(home.resolve("config/opensearch.yml"), yml);
    Files.createDirectories(home.resolve("tmp"));
    if (root) {
      run("chown", "-R", "nobody", work.toString());
    }

    List<String> command = new ArrayList<>();
    if (root) {
      command.addAll(List.of("runuser", "-u", "nobody", "--"));
    }
    command.addAll(List.of(home.resolve("bin/opensearch").toString(), "-d", "-p", pidFile.toString()));
    ProcessBuilder builder = new ProcessBuilder(command).directory(home.toFile())
        .redirectErrorStream(true).redirectOutput(console.toFile());
    Map<String, String> env = builder.environment();
    env.remove("OPENSEARCH_HOME");
    env.remove("OPENSEARCH_PATH_CONF");
    env.put("OPENSEARCH_JAVA_HOME", System.getProperty("java.home"));
    env.put("OPENSEARCH_JAVA_OPTS", "-Xms256m -Xmx256m");
    env.put("OPENSEARCH_TMPDIR", home.resolve("tmp").toString());

    Process launcher;
    synchronized (STOP_LOCK) {
      if (stopped) {
        throw new IllegalStateException("the test run is ending");
      }
      launcher = builder.start();
      launched = true;
    }
    // -d: the script returns once the node's JVM runs in the background; it then writes its pid file.
    if (!launcher.waitFor(60, TimeUnit.SECONDS) || launcher.exitValue() != 0) {
      launcher.destroyForcibly();
      throw new IllegalStateException("bin/opensearch failed\n" + tails(home, console));
    }

    String base = "http://127.0.0.1:" + httpPort;
    HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(1)).build();
    HttpRequest health = HttpRequest.newBuilder(URI.create(base + "/_cluster/health?wait_for_status=yellow&timeout=1s"))
        .timeout(Duration.ofSeconds(5)).build();
    long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
    while (System.nanoTime() < deadline) {
      ProcessHandle node = node(Duration.ZERO);
      if (node != null && !alive(node)) {
        throw new IllegalStateException("OpenSearch exited while starting\n" + tails(home, console));
      }
      try {
        if (http.send(health, HttpResponse.BodyHandlers.discarding()).statusCode() == 200) {
          return base;
        }
      } catch (IOException notYetListening) {
        // retry
      }
      Thread.sleep(250);
    }
    throw new IllegalStateException("OpenSearch not healthy after " + START_TIMEOUT.toSeconds() + " s\n"
        + tails(home, console));
  }

  /** The node's process, from its pid file once the node has written it; null before. */
  private static ProcessHandle node(Duration wait) throws InterruptedException {
    long deadline = System.nanoTime() + wait.toNanos();
    synchronized (STOP_LOCK) {
      while (process == null) {
        try {
          String pid = Files.readString(pidFile).trim();
          // Taken once: a ProcessHandle remembers the start time, so a reused pid is never signalled.
          process = ProcessHandle.of(Long.parseLong(pid)).orElse(null);
          break;
        } catch (IOException | NumberFormatException notWrittenYet) {
          if (System.nanoTime() >= deadline) {
            break;
          }
          Thread.sleep(100);
        }
      }
      return process;
    }
  }

  /** SIGTERM, then SIGKILL after a grace period; waits for the exit, then removes the copy. */
  private static void stop() {
    synchronized (STOP_LOCK) {
      if (stopped) {
        return;
      }
      stopped = true;
      try {
        // Stopped during its start: the pid file may be a moment away.
        ProcessHandle node = launched ? node(Duration.ofSeconds(10)) : null;
        if (node != null && alive(node)) {
          node.destroy();
          if (!awaitExit(node, STOP_GRACE)) {
            node.destroyForcibly();
            awaitExit(node, Duration.ofSeconds(10));
          }
        }
        if (dir != null && (node == null || !alive(node))) {
          deleteTree(dir);
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  private static boolean awaitExit(ProcessHandle node, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (alive(node)) {
      if (System.nanoTime() >= deadline) {
        return false;
      }
      Thread.sleep(100);
    }
    return true;
  }

  /**
   * The daemonized node is not our child: once it exits it stays a zombie until init reaps it, which
   * some container inits never do, and ProcessHandle counts a zombie as alive. /proc tells them apart.
   */
  private static boolean alive(ProcessHandle node) {
    if (!node.isAlive()) {
      return false;
    }
    try {
      String stat = Files.readString(Path.of("/proc", Long.toString(node.pid()), "stat"));
      return stat.charAt(stat.lastIndexOf(')') + 2) != 'Z';
    } catch (IOException | RuntimeException noProc) {
      return node.isAlive();
    }
  }

  private static void copyTree(Path from, Path to) throws IOException {
    try (Stream<Path> paths = Files.walk(from)) {
      for (Path p : (Iterable<Path>) paths::iterator) {
        Path target = to.resolve(from.relativize(p).toString());
        if (Files.isDirectory(p)) {
          Files.createDirectories(target);
        } else {
          // COPY_ATTRIBUTES keeps the scripts executable.
          Files.copy(p, target, StandardCopyOption.COPY_ATTRIBUTES);
        }
      }
    }
  }

  private static void deleteTree(Path root) {
    try (Stream<Path> paths = Files.walk(root)) {
      paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException | RuntimeException e) {
      // best effort: it is a temp folder
    }
  }


  private static void run(String... command) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (p.waitFor() != 0) {
      throw new IllegalStateException(String.join(" ", command) + " failed: " + output);
    }
  }

  private static String tails(Path home, Path console) {
    return tail(console) + tail(home.resolve("logs/" + CLUSTER + ".log"));
  }

  private static String tail(Path file) {
    try {
      List<String> lines = new String(Files.readAllBytes(file), StandardCharsets.UTF_8).lines().toList();
      return "--- " + file.getFileName() + " (last lines) ---\n"
          + String.join("\n", lines.subList(Math.max(0, lines.size() - LOG_TAIL_LINES), lines.size())) + "\n";
    } catch (IOException e) {
      return "--- " + file.getFileName() + ": none ---\n";
    }
  }
}
