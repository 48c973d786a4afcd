package io.kfold;

import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/** Plugin jars built in a test, as a user builds theirs: compiled against kfold, then packed. */
public final class PluginJars {

  private PluginJars() {}

  /**
   * Compiles {@code sources} (by class name) against the test's class path, as a plugin is compiled
   * against kfold, and packs them, with {@code resources}, into {@code jar}.
   */
  public static void build(Path jar, Map<String, String> sources, Map<String, String> resources) throws IOException {
    Path work = TestNodes.tempDir("plugin-build");
    Path classes = Files.createDirectories(work.resolve("classes"));
    List<String> arguments = new ArrayList<>(List.of("-d", classes.toString(), "-cp",
        System.getProperty("java.class.path")));
    for (Map.Entry<String, String> source : sources.entrySet()) {
      Path file = work.resolve(source.getKey().replace('.', '/') + ".java");
      Files.createDirectories(file.getParent());
      Files.writeString(file, source.getValue());
      arguments.add(file.toString());
    }
    JavaCompiler compiler = ToolProvider.getSystemJavaCompiler();
    assertThat(compiler.run(null, null, null, arguments.toArray(String[]::new))).as("javac " + sources.keySet()).isZero();
    try (JarOutputStream out = new JarOutputStream(Files.newOutputStream(jar)); Stream<Path> files = Files.walk(classes)) {
      for (Path file : files.filter(Files::isRegularFile).toList()) {
        put(out, classes.relativize(file).toString().replace(File.separatorChar, '/'), Files.readAllBytes(file));
      }
      for (Map.Entry<String, String> resource : resources.entrySet()) {
        put(out, resource.getKey(), resource.getValue().getBytes(StandardCharsets.UTF_8));
      }
    }
  }

  private static void put(JarOutputStream out, String name, byte[] bytes) throws IOException {
    out.putNextEntry(new JarEntry(name));
    out.write(bytes);
    out.closeEntry();
  }
}
