package io.kfold;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Programs some tests drive that are not Java (Chromium, podman, Prometheus): .ci/run installs them
 * from Debian's packages; where one is missing, the tests that need it are skipped, saying why.
 */
public final class Installed {

  private Installed() {
  }

  /** The first of {@code names} on the PATH, or null when none is. */
  public static Path program(String... names) {
    for (String folder : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
      for (String name : names) {
        Path candidate = Path.of(folder, name);
        if (Files.isRegularFile(candidate) && Files.isExecutable(candidate)) {
          return candidate;
        }
      }
    }
    return null;
  }
}
