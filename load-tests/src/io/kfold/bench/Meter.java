package io.kfold.bench;

import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * CPU and GC spent during one measured phase, by this JVM and by the broker's JVM.
 *
 * <p>On a machine with few cores the benchmark JVM and the broker compete for them, so a rate is only
 * meaningful next to the cores each side used: a fold that keeps one core busy while the broker idles
 * is limited by its own thread, not by Kafka.
 *
 * <p>It also reports this JVM's resident memory (Linux only): at the end of the phase and its peak
 * during the phase. Meters must not overlap: each one resets the process's peak when it starts.
 */
final class Meter {

  private final long brokerPid;
  private final long startNanos;
  private final long startCpuNanos;
  private final long startBrokerCpuNanos;
  private final long startGcMillis;
  private final long startGcCount;
  /** Whether the kernel's peak RSS could be reset, so that VmHWM is this phase's peak, not the JVM's. */
  private final boolean peakReset;

  private Meter(long brokerPid) {
    this.peakReset = Rss.resetPeak(ProcessHandle.current().pid());
    this.brokerPid = brokerPid;
    this.startNanos = System.nanoTime();
    this.startCpuNanos = processCpuNanos();
    this.startBrokerCpuNanos = brokerCpuNanos(brokerPid);
    this.startGcMillis = gcMillis();
    this.startGcCount = gcCount();
  }

  static Meter start(long brokerPid) {
    return new Meter(brokerPid);
  }

  /** What the phase used so far: wall time, CPU of both JVMs (in cores), and this JVM's collections. */
  Map<String, Object> sample() {
    double wall = (System.nanoTime() - startNanos) / 1e9;
    double cpu = (processCpuNanos() - startCpuNanos) / 1e9;
    double brokerCpu = (brokerCpuNanos(brokerPid) - startBrokerCpuNanos) / 1e9;
    Map<String, Object> result = new LinkedHashMap<>();
    result.put("seconds", Report.round(wall, 3));
    result.put("benchJvmCpuSeconds", Report.round(cpu, 2));
    result.put("benchJvmCores", Report.round(cpu / wall, 2));
    result.put("brokerCpuSeconds", Report.round(brokerCpu, 2));
    result.put("brokerCores", Report.round(brokerCpu / wall, 2));
    result.put("gcCount", gcCount() - startGcCount);
    result.put("gcMillis", gcMillis() - startGcMillis);
    long pid = ProcessHandle.current().pid();
    long rss = Rss.rssBytes(pid);
    if (rss >= 0) {
      result.put("benchJvmRssMiB", Math.round(rss / (1024.0 * 1024)));
    }
    long peak = Rss.peakRssBytes(pid);
    if (peakReset && peak >= 0) {
      result.put("benchJvmPeakRssMiB", Math.round(peak / (1024.0 * 1024)));
    }
    return result;
  }

  /** CPU time of this JVM so far; also what the load generator reports of its own JVM. */
  static long processCpuNanos() {
    if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
      return os.getProcessCpuTime();
    }
    return 0;
  }

  private static long brokerCpuNanos(long pid) {
    return ProcessHandle.of(pid).flatMap(p -> p.info().totalCpuDuration()).map(Duration::toNanos).orElse(0L);
  }

  /** Time this JVM spent in garbage collections so far. */
  static long gcMillis() {
    return ManagementFactory.getGarbageCollectorMXBeans().stream()
        .mapToLong(GarbageCollectorMXBean::getCollectionTime).filter(t -> t > 0).sum();
  }

  private static long gcCount() {
    return ManagementFactory.getGarbageCollectorMXBeans().stream()
        .mapToLong(GarbageCollectorMXBean::getCollectionCount).filter(c -> c > 0).sum();
  }
}
