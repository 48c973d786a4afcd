package io.kfold.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The resident memory of a process, from {@code /proc/<pid>/status}: what the machine gives a node,
 * heap, RocksDB's native memory and all. Linux only; elsewhere, and for a process that has exited, -1.
 */
final class Rss {

  private Rss() {}

  /** The process's resident set now (VmRSS), in bytes; -1 if unknown. */
  static long rssBytes(long pid) {
    return statusBytes(pid, "VmRSS:");
  }

  /** The highest resident set the process has had (VmHWM), in bytes; -1 if unknown. */
  static long peakRssBytes(long pid) {
    return statusBytes(pid, "VmHWM:");
  }

  /** Bytes as whole MiB for a table, "-" when unknown. */
  static String mib(long bytes) {
    return bytes < 0 ? "-" : Long.toString(Math.round(bytes / (1024.0 * 1024.0)));
  }

  private static long statusBytes(long pid, String field) {
    try {
      for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
        if (line.startsWith(field)) {
          // "VmRSS:	  123456 kB"
          return Long.parseLong(line.substring(field.length()).replace("kB", "").trim()) * 1024;
        }
      }
    } catch (IOException | RuntimeException e) {
      // gone, or not Linux
    }
    return -1;
  }
}
