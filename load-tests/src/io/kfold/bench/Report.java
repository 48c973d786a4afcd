package io.kfold.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;

/** The machine a run happened on, and the JSON file of a run. */
final class Report {

  private Report() {}

  static double round(double value, int decimals) {
    double scale = Math.pow(10, decimals);
    return Math.round(value * scale) / scale;
  }

  /** Enough about the machine to tell whether two result files can be compared at all. */
  static Map<String, Object> machine() {
    Map<String, Object> machine = new LinkedHashMap<>();
    machine.put("nproc", Runtime.getRuntime().availableProcessors());
    machine.put("cpu", firstLineValue(Path.of("/proc/cpuinfo"), "model name").orElse(System.getProperty("os.arch")));
    firstLineValue(Path.of("/proc/meminfo"), "MemTotal")
        .map(kb -> round(Long.parseLong(kb.replaceAll("[^0-9]", "")) / 1024.0 / 1024.0, 1))
        .ifPresent(gib -> machine.put("memoryGiB", gib));
    machine.put("os", System.getProperty("os.name") + " " + System.getProperty("os.version") + " "
        + System.getProperty("os.arch"));
    machine.put("java", System.getProperty("java.runtime.version"));
    machine.put("jvm", System.getProperty("java.vm.name") + " (" + System.getProperty("java.vm.vendor") + ")");
    machine.put("jvmArgs", ManagementFactory.getRuntimeMXBean().getInputArguments().stream()
        .filter(arg -> arg.startsWith("-X")).toList());
    return machine;
  }

  /** The load average, because another process busy on a 2-core machine halves any figure. */
  static String loadAverage() {
    try {
      return Files.readString(Path.of("/proc/loadavg")).trim();
    } catch (IOException | RuntimeException e) {
      return String.valueOf(ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
    }
  }

  /** Kafka brokers on this machine other than ours: a second broker competes for the same cores. */
  static long otherBrokers(long ourBrokerPid) {
    try (Stream<ProcessHandle> processes = ProcessHandle.allProcesses()) {
      return processes
          .filter(p -> p.pid() != ourBrokerPid)
          .filter(p -> p.info().commandLine().map(c -> c.contains("kafka.Kafka")).orElse(false))
          .count();
    }
  }

  private static Optional<String> firstLineValue(Path file, String name) {
    try (Stream<String> lines = Files.lines(file)) {
      return lines.filter(line -> line.startsWith(name)).findFirst()
          .map(line -> line.substring(line.indexOf(':') + 1).trim());
    } catch (IOException | RuntimeException e) {
      return Optional.empty();
    }
  }

  static void writeJson(Path file, Map<String, Object> run) throws IOException {
    Files.createDirectories(file.getParent());
    new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(file.toFile(), run);
  }
}
