package io.kfold.bench;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A part of a benchmark that runs in a JVM of its own and starts cold: the Kafka Streams baseline,
 * and kfold's fold next to it, so that neither folds with classes the other warmed.
 */
final class ChildJvm {

  private ChildJvm() {}

  /**
   * The command that runs {@code mainClass} on {@code classpath} with a kfold node's heap settings
   * (run.sh passes them as {@code kfold.bench.nodeJavaOptions}; without them, the benchmark JVM's), and
   * its log configuration. The Streams baselines get the same heap as kfold's node, so that neither
   * fold gets more memory than the other.
   */
  static List<String> command(String classpath, String mainClass, List<String> arguments) {
    List<String> command = new ArrayList<>();
    command.add(ProcessHandle.current().info().command().orElse("java"));
    command.addAll(nodeJavaOptions());
    String logConfig = System.getProperty("log4j2.configurationFile");
    if (logConfig != null) {
      command.add("-Dlog4j2.configurationFile=" + logConfig);
    }
    command.addAll(List.of("-cp", classpath, mainClass));
    command.addAll(arguments);
    return command;
  }

  /** The heap settings of a JVM that runs a kfold node. */
  static List<String> nodeJavaOptions() {
    String options = System.getProperty("kfold.bench.nodeJavaOptions", "").trim();
    if (!options.isEmpty()) {
      return List.of(options.split("\\s+"));
    }
    return ManagementFactory.getRuntimeMXBean().getInputArguments().stream()
        .filter(arg -> arg.startsWith("-Xms") || arg.startsWith("-Xmx"))
        .toList();
  }

  /** Runs {@code command} to its end, its output shown; fails on a timeout or an exit code other than 0. */
  static void run(List<String> command, long timeoutSeconds, String what) throws Exception {
    Process process = new ProcessBuilder(command).inheritIO().start();
    // Ctrl-C must not leave the child folding on: like the broker, it would outlive this JVM.
    Thread stop = new Thread(process::destroy, "stop-" + what.replace(' ', '-'));
    Runtime.getRuntime().addShutdownHook(stop);
    try {
      if (!process.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
        throw new IllegalStateException(what + " (pid " + process.pid() + ") did not finish in " + timeoutSeconds + " s");
      }
      if (process.exitValue() != 0) {
        throw new IllegalStateException(what + " failed with exit code " + process.exitValue() + "; its output is above");
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
  }

  /** The results file a child JVM wrote before it exited. */
  static Map<String, Object> readResult(Path file) throws IOException {
    return new ObjectMapper().readValue(file.toFile(), new TypeReference<LinkedHashMap<String, Object>>() {});
  }
}
