package io.kfold.log;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.Reader;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

/**
 * A single-node Kafka broker (KRaft, broker and controller in one process) that kfold runs as a
 * child JVM when no cluster is configured. Its classes come from the jars the build copied to
 * {@code kafka-broker/} beside kfold's own jar, so they never mix with kfold's classpath.
 *
 * <p>Its folder keeps the configuration (ports chosen on first start are kept), the data, the
 * log, and a pid file: a broker left behind by a killed kfold is stopped before a new one starts.
 */
public final class LocalBroker implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(LocalBroker.class);
  private static final Duration START_TIMEOUT = Duration.ofSeconds(90);
  private static final Duration STOP_TIMEOUT = Duration.ofSeconds(30);

  private final Path dir;
  private final Process process;
  private final String bootstrap;

  private LocalBroker(Path dir, Process process, String bootstrap) {
    this.dir = dir;
    this.process = process;
    this.bootstrap = bootstrap;
  }

  /**
   * Starts the broker in {@code dir}, formatting its storage on first use, and waits until it
   * answers.
   *
   * @param port the client port on first start; 0 picks a free one
   */
  public static LocalBroker start(Path dir, Path libs, int port) throws IOException, InterruptedException {
    return start(dir, libs, port, Extras.NONE);
  }

  /**
   * What a broker may have beyond kfold's own: more listeners, more settings, and SCRAM users, which
   * a KRaft broker takes at format time only. The PLAINTEXT listener stays, for the broker itself
   * (between broker and controller, and the readiness check) and for {@link #bootstrap()}.
   *
   * @param listeners  each listener's security protocol (also its name) and port, e.g. SASL_SSL
   * @param properties settings added to the broker's, e.g. its keystore and SASL mechanisms
   * @param scramUsers {@code --add-scram} arguments of the storage format, e.g.
   *                   {@code SCRAM-SHA-512=[name=kfold,password=...]}
   */
  public record Extras(Map<String, Integer> listeners, Map<String, String> properties, List<String> scramUsers) {
    public static final Extras NONE = new Extras(Map.of(), Map.of(), List.of());
  }

  /** The same, with {@code extras}: taken when the broker's folder is new, as the ports are. */
  public static LocalBroker start(Path dir, Path libs, int port, Extras extras) throws IOException, InterruptedException {
    if (!Files.isDirectory(libs)) {
      throw new IllegalStateException("no broker jars in " + libs + ": build kfold with 'mvn package' first, "
          + "or set KFOLD_KAFKA_BOOTSTRAP to use an existing cluster");
    }
    Files.createDirectories(dir);
    dir = dir.toAbsolutePath();
    stopLeftover(dir);
    Path config = dir.resolve("server.properties");
    if (!Files.exists(config)) {
      writeConfig(dir, config, port == 0 ? freePort() : port, freePort(), extras);
    }
    Properties props = new Properties();
    try (Reader in = Files.newBufferedReader(config)) {
      props.load(in);
    }
    String bootstrap = java.util.Arrays.stream(props.getProperty("advertised.listeners").split(","))
        .filter(listener -> listener.startsWith("PLAINTEXT://")).findFirst().orElseThrow()
        .replace("PLAINTEXT://", "");
    Path log = dir.resolve("broker.log");
    if (!Files.exists(dir.resolve("data").resolve("meta.properties"))) {
      format(dir, libs, config, log, extras.scramUsers());
    }
    Process process = new ProcessBuilder(javaCommand(dir, libs, "kafka.Kafka", config.toString()))
        .redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
        .start();
    Files.writeString(dir.resolve("broker.pid"), Long.toString(process.pid()));
    LocalBroker broker = new LocalBroker(dir, process, bootstrap);
    try {
      broker.awaitReady();
    } catch (RuntimeException | InterruptedException e) {
      broker.close();
      throw e;
    }
    LOG.info("local Kafka broker (pid {}) ready on {}; data and log in {}", process.pid(), bootstrap, dir);
    return broker;
  }

  /** The jars beside the running code: {@code target/kafka-broker} for both the jar and the classes folder. */
  public static Path defaultLibs() {
    try {
      Path codeSource = Path.of(LocalBroker.class.getProtectionDomain().getCodeSource().getLocation().toURI());
      return codeSource.getParent().resolve("kafka-broker");
    } catch (URISyntaxException e) {
      throw new IllegalStateException("cannot locate kfold's own jar", e);
    }
  }

  public String bootstrap() {
    return bootstrap;
  }

  public long pid() {
    return process.pid();
  }

  /** Stops the broker (SIGTERM, then SIGKILL after a grace period); a second call does nothing. */
  @Override
  public void close() {
    stop(process.toHandle());
    try {
      Files.deleteIfExists(dir.resolve("broker.pid"));
    } catch (IOException e) {
      LOG.warn("cannot delete {}", dir.resolve("broker.pid"), e);
    }
  }

  private void awaitReady() throws InterruptedException {
    long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
    Map<String, Object> conf = Map.of(
        AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
        AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 2000,
        AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 2000);
    awaitListening(deadline);
    try (Admin admin = Admin.create(conf)) {
      while (true) {
        if (!process.isAlive()) {
          throw new IllegalStateException("local Kafka broker exited with " + process.exitValue() + "; see "
              + dir.resolve("broker.log"));
        }
        try {
          if (!admin.describeCluster().nodes().get(2, TimeUnit.SECONDS).isEmpty()) {
            return;
          }
        } catch (Exception notYet) {
          // not listening yet
        }
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException("local Kafka broker not ready after " + START_TIMEOUT + "; see "
              + dir.resolve("broker.log"));
        }
        Thread.sleep(200);
      }
    }
  }

  /** Waits for the port first: an admin client pointed at a closed port logs a warning per retry. */
  private void awaitListening(long deadline) throws InterruptedException {
    String[] hostPort = bootstrap.split(":");
    while (System.nanoTime() < deadline && process.isAlive()) {
      try (java.net.Socket socket = new java.net.Socket()) {
        socket.connect(new java.net.InetSocketAddress(hostPort[0], Integer.parseInt(hostPort[1])), 500);
        return;
      } catch (IOException notYet) {
        Thread.sleep(100);
      }
    }
  }

  private static void stopLeftover(Path dir) throws IOException {
    Path pidFile = dir.resolve("broker.pid");
    if (!Files.exists(pidFile)) {
      return;
    }
    Optional<ProcessHandle> leftover;
    try {
      leftover = ProcessHandle.of(Long.parseLong(Files.readString(pidFile).trim()));
    } catch (NumberFormatException e) {
      leftover = Optional.empty();
    }
    // Only a process that is our broker: a recycled pid may belong to anything.
    leftover.filter(ProcessHandle::isAlive)
        .filter(p -> p.info().commandLine().map(c -> c.contains("kafka.Kafka") && c.contains(dir.toString())).orElse(false))
        .ifPresent(p -> {
          LOG.warn("stopping the local Kafka broker (pid {}) left running by an earlier kfold", p.pid());
          stop(p);
        });
    Files.delete(pidFile);
  }

  private static void stop(ProcessHandle process) {
    if (!process.isAlive()) {
      return;
    }
    process.destroy();
    try {
      process.onExit().get(STOP_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    } catch (Exception e) {
      LOG.warn("local Kafka broker (pid {}) did not stop within {}; killing it", process.pid(), STOP_TIMEOUT);
      process.destroyForcibly();
      process.onExit().join();
    }
  }

  private static void format(Path dir, Path libs, Path config, Path log, List<String> scramUsers)
      throws IOException, InterruptedException {
    List<String> args = new java.util.ArrayList<>(List.of("format", "-t", clusterId(), "-c", config.toString()));
    scramUsers.forEach(user -> args.addAll(List.of("--add-scram", user)));
    Process format = new ProcessBuilder(javaCommand(dir, libs, "kafka.tools.StorageTool", args.toArray(String[]::new)))
        .redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
        .start();
    if (!format.waitFor(60, TimeUnit.SECONDS) || format.exitValue() != 0) {
      format.destroyForcibly();
      throw new IllegalStateException("formatting the local Kafka broker's storage failed; see " + log);
    }
  }

  private static List<String> javaCommand(Path dir, Path libs, String mainClass, String... args) {
    String java = ProcessHandle.current().info().command().orElse("java");
    List<String> command = new java.util.ArrayList<>(List.of(java, "-Xms128m", "-Xmx512m",
        "-Dlog4j2.configurationFile=" + dir.resolve("log4j2.properties"),
        "-cp", libs.toAbsolutePath() + "/*", mainClass));
    command.addAll(List.of(args));
    return command;
  }

  /** A KRaft cluster id: 16 random bytes in URL-safe base64, not starting with '-'. */
  private static String clusterId() {
    SecureRandom random = new SecureRandom();
    byte[] bytes = new byte[16];
    String id;
    do {
      random.nextBytes(bytes);
      id = Base64.getUrlEncoder().withoutPadding().encodeToString(bytes);
    } while (id.startsWith("-"));
    return id;
  }

  /** A port free on the loopback interface right now. */
  public static int freePort() throws IOException {
    try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return socket.getLocalPort();
    }
  }

  private static void writeConfig(Path dir, Path config, int port, int controllerPort, Extras extras)
      throws IOException {
    StringBuilder listeners = new StringBuilder();
    StringBuilder protocols = new StringBuilder();
    extras.listeners().forEach((protocol, listenerPort) -> {
      listeners.append(',').append(protocol).append("://127.0.0.1:").append(listenerPort);
      protocols.append(',').append(protocol).append(':').append(protocol);
    });
    StringBuilder more = new StringBuilder();
    extras.properties().forEach((name, value) -> more.append(name).append('=').append(value).append('\n'));
    String properties = String.join("\n",
        "# Written by kfold on first start of its local broker.",
        "process.roles=broker,controller",
        "node.id=1",
        "controller.quorum.voters=1@127.0.0.1:" + controllerPort,
        "listeners=PLAINTEXT://127.0.0.1:" + port + ",CONTROLLER://127.0.0.1:" + controllerPort + listeners,
        "advertised.listeners=PLAINTEXT://127.0.0.1:" + port + listeners,
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT" + protocols,
        "log.dirs=" + dir.resolve("data"),
        "auto.create.topics.enable=false",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=8",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        "") + more;
    Files.writeString(config, properties, StandardCharsets.UTF_8);
    Files.writeString(dir.resolve("log4j2.properties"), String.join("\n",
        "rootLogger.level=WARN",
        "rootLogger.appenderRef.out.ref=out",
        "appender.out.type=Console",
        "appender.out.name=out",
        "appender.out.layout.type=PatternLayout",
        "appender.out.layout.pattern=[%d] %p %m (%c)%n",
        "logger.started.name=kafka.server.KafkaRaftServer",
        "logger.started.level=INFO",
        ""), StandardCharsets.UTF_8);
  }

}
