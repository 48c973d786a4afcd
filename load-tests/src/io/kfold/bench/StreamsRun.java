package io.kfold.bench;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The Kafka Streams baseline: {@code StreamsFoldApp} (load-tests/streams) folding the same input in a
 * JVM of its own, on the classpath run.sh resolved for it. A separate JVM because kafka-streams brings
 * a rocksdbjni other than kfold's, and two RocksDB native libraries do not share one classpath.
 *
 * <p>The app measures itself, from just before it creates its {@code KafkaStreams} to the last event
 * reduced, so the JVM's own start is not part of its figure; it starts cold, where kfold runs in the
 * benchmark JVM after the raw consumer has warmed Kafka's client classes.
 */
final class StreamsRun {

  static final List<String> GUARANTEES = List.of("at_least_once", "exactly_once_v2");
  private static final long TIMEOUT_SECONDS = 1_000;

  private StreamsRun() {}

  /** A short name for application ids and the table. */
  static String shortName(String guarantee) {
    return switch (guarantee) {
      case "at_least_once" -> "alos";
      case "exactly_once_v2" -> "eos-v2";
      default -> guarantee;
    };
  }

  static Map<String, Object> run(String classpath, String bootstrap, Input input, String guarantee, Path workDir,
                                 long brokerPid) throws Exception {
    // Its own application id and a fresh state folder: a group and a store that start from nothing.
    String applicationId = input.app + "-streams-" + shortName(guarantee);
    Path stateDir = Files.createDirectories(workDir.resolve(applicationId));
    Path resultFile = workDir.resolve(applicationId + "-result.json");

    List<String> command = new ArrayList<>();
    command.add(ProcessHandle.current().info().command().orElse("java"));
    // The heap settings of the benchmark JVM, so neither fold gets more memory than the other.
    ManagementFactory.getRuntimeMXBean().getInputArguments().stream()
        .filter(arg -> arg.startsWith("-Xms") || arg.startsWith("-Xmx"))
        .forEach(command::add);
    String logConfig = System.getProperty("log4j2.configurationFile");
    if (logConfig != null) {
      command.add("-Dlog4j2.configurationFile=" + logConfig);
    }
    command.addAll(List.of("-cp", classpath, "io.kfold.bench.StreamsFoldApp",
        "--bootstrap", bootstrap,
        "--topic", input.topic,
        "--application-id", applicationId,
        "--state-dir", stateDir.toString(),
        "--guarantee", guarantee,
        "--events", Long.toString(input.events),
        "--keys", Integer.toString(input.keys),
        "--broker-pid", Long.toString(brokerPid),
        "--result", resultFile.toString()));

    Process process = new ProcessBuilder(command).inheritIO().start();
    // Ctrl-C must not leave the Streams JVM folding on: like the broker, it would outlive this one.
    Thread stop = new Thread(process::destroy, "stop-streams-app");
    Runtime.getRuntime().addShutdownHook(stop);
    try {
      if (!process.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
        throw new IllegalStateException("the Streams app (pid " + process.pid() + ") did not finish in "
            + TIMEOUT_SECONDS + " s");
      }
      if (process.exitValue() != 0) {
        throw new IllegalStateException("the Streams app (" + guarantee + ") failed with exit code "
            + process.exitValue() + "; its output is above");
      }
    } finally {
      if (process.isAlive()) {
        process.destroy();
        if (!process.waitFor(30, TimeUnit.SECONDS)) {
          process.destroyForcibly();
        }
      }
      try {
        Runtime.getRuntime().removeShutdownHook(stop);
      } catch (IllegalStateException shuttingDown) {
        // the hook runs anyway
      }
    }
    return read(resultFile);
  }

  private static Map<String, Object> read(Path file) throws IOException {
    return new ObjectMapper().readValue(file.toFile(), new TypeReference<LinkedHashMap<String, Object>>() {});
  }
}
