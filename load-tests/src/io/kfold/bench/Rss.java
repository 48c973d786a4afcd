package io.kfold.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The resident memory of a process, as its benchmark tables show it: from {@code /proc/<pid>/status},
 * so on Linux only; elsewhere, and for a process that is gone, the figures are -1.
 */
final class Rss {

  private Rss() {}

  /** The memory {@code pid} holds now (VmRSS). */
  static long rssBytes(long pid) {
    return statusBytes(pid, "VmRSS");
  }

  /** The most {@code pid} held since it started or since {@link #resetPeak} (VmHWM). */
  static long peakRssBytes(long pid) {
    return statusBytes(pid, "VmHWM");
  }

  /**
   * Sets the peak of {@code pid} back to its current RSS (writing 5 to clear_refs, Linux 4.0 and later), so
   * that a peak read later belongs to what ran in between. Answers whether it could.
   */
  static boolean resetPeak(long pid) {
    try {
      Files.writeString(Path.of("/proc", Long.toString(pid), "clear_refs"), "5");
      return true;
    } catch (IOException | RuntimeException e) {
      return false;
    }
  }

  /** {@code bytes} in whole MiB, or "-" for a figure that could not be read. */
  static String mib(long bytes) {
    return bytes < 0 ? "-" : Long.toString(Math.round(bytes / (1024.0 * 1024)));
  }

  private static long statusBytes(long pid, String field) {
    try {
      for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
        if (line.startsWith(field + ":")) {
          return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;  // the kernel gives kB
        }
      }
    } catch (IOException | RuntimeException e) {
      // not Linux, or the process is gone
    }
    return -1;
  }
}
