package io.kfold.bench;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * Keeps the "latest run" block of each benchmark in load-tests/README.md: the table a run printed,
 * with its date, machine, revision and load average, between the markers
 * {@code <!-- latest-run:NAME -->} and {@code <!-- /latest-run:NAME -->}. The discussion around it
 * stays hand-written; a run that noted problems does not replace it.
 */
final class LatestRun {

  private LatestRun() {}

  static void write(Path readme, String name, Path file, Map<String, Object> json, String table) {
    String begin = "<!-- latest-run:" + name + " -->";
    String end = "<!-- /latest-run:" + name + " -->";
    try {
      String text = Files.exists(readme) ? Files.readString(readme, StandardCharsets.UTF_8) : "";
      int from = text.indexOf(begin);
      int to = text.indexOf(end);
      if (from < 0 || to < from) {
        System.out.println("no latest-run block for " + name + " in " + readme + ": not updated");
        return;
      }
      Map<?, ?> machine = (Map<?, ?>) json.get("machine");
      String block = begin + "\n"
          + "Latest run, written by the benchmark: `" + file.getFileName().toString().replaceFirst("\\.json$", "")
          + "`, " + json.get("date") + ", " + machine.get("nproc") + " cores (" + machine.get("cpu") + ", "
          + machine.get("memoryGiB") + " GiB), Java " + machine.get("java") + ", kfold at `" + json.get("revision")
          + "`, load average at the start " + json.get("loadAverageAtStart") + ":\n\n"
          + "```text\n" + table.strip() + "\n```\n";
      Files.writeString(readme, text.substring(0, from) + block + text.substring(to), StandardCharsets.UTF_8);
      System.out.println("latest run in " + readme);
    } catch (IOException | RuntimeException e) {
      System.out.println("WARNING: " + readme + " was not updated: " + e);
    }
  }
}
