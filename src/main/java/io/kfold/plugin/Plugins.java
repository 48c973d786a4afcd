package io.kfold.plugin;

import io.kfold.config.NodeConfig;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.CodeSource;
import java.util.ArrayList;
import java.util.List;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.stream.Stream;

/**
 * The jars of the plugins folder, and the one class loader over them that loads the Java entity
 * types, views and effect sinks the configuration names by {@code class:}, or that a jar lists for
 * {@link java.util.ServiceLoader} in {@code META-INF/services/}. Its parent is kfold's own loader,
 * so a plugin sees kfold's API and libraries, and kfold's own classes win over a plugin's copy of
 * them. Every failure names the class and the jar it came from (or would have), so that whoever
 * dropped a jar in the folder knows which one to fix.
 */
public final class Plugins implements AutoCloseable {

  private final Path dir;
  private final List<Path> jars;
  private final ClassLoader loader;

  private Plugins(Path dir, List<Path> jars, ClassLoader loader) {
    this.dir = dir;
    this.jars = jars;
    this.loader = loader;
  }

  /** No plugins: classes come from kfold's own class path. */
  public static Plugins none() {
    return new Plugins(null, List.of(), Plugins.class.getClassLoader());
  }

  /**
   * The jars of the configured folder. The default folder may be missing (no plugins); a folder
   * the configuration names must exist. A jar that cannot be read stops here, named.
   */
  public static Plugins open(NodeConfig.Plugins config) {
    Path dir = config.folder();
    if (!Files.isDirectory(dir)) {
      if (config.configured()) {
        throw new IllegalArgumentException("configuration: 'plugins.dir': the folder " + dir.toAbsolutePath()
            + " does not exist or is not a folder");
      }
      return none();
    }
    List<Path> jars;
    try (Stream<Path> files = Files.list(dir)) {
      jars = files.filter(file -> file.getFileName().toString().endsWith(".jar")).sorted().toList();
    } catch (IOException e) {
      throw new UncheckedIOException("plugins: cannot list the folder " + dir.toAbsolutePath(), e);
    }
    List<URL> urls = new ArrayList<>();
    for (Path jar : jars) {
      // Opened once here so that a damaged jar is named now, not as a class that cannot be found later.
      try (JarFile ignored = new JarFile(jar.toFile())) {
        urls.add(jar.toUri().toURL());
      } catch (IOException e) {
        throw new IllegalArgumentException("plugins: the jar " + jar + " cannot be read: " + e, e);
      }
    }
    if (jars.isEmpty()) {
      return new Plugins(dir, jars, Plugins.class.getClassLoader());
    }
    return new Plugins(dir, jars, new URLClassLoader("kfold-plugins", urls.toArray(URL[]::new),
        Plugins.class.getClassLoader()));
  }

  /**
   * A new instance of {@code className}, which must implement {@code kind} and have a public
   * no-argument constructor; {@code what} says who asked for it, for the message.
   */
  public <T> T create(String className, Class<T> kind, String what) {
    Class<?> found = find(className, kind, what);
    return construct(found, kind, what, () -> found.getConstructor().newInstance(),
        "a public class with a public no-argument constructor");
  }

  /**
   * The same, for a class that is given {@code settings} (an effect sink's): made with its public
   * constructor {@code (JsonNode)} when it has one (given an empty object when settings is null),
   * else with its no-argument one, which takes no settings.
   */
  public <T> T create(String className, Class<T> kind, String what, JsonNode settings) {
    Class<?> found = find(className, kind, what);
    Constructor<?> withSettings;
    try {
      withSettings = found.getConstructor(JsonNode.class);
    } catch (NoSuchMethodException | LinkageError e) {
      if (settings != null) {
        throw new IllegalArgumentException(what + ": the class " + className + " (" + origin(found)
            + ") has settings but no public constructor (com.fasterxml.jackson.databind.JsonNode settings) to take them");
      }
      return construct(found, kind, what, () -> found.getConstructor().newInstance(),
          "a public class with a public constructor (com.fasterxml.jackson.databind.JsonNode settings) or none");
    }
    JsonNode given = settings == null ? JsonNodeFactory.instance.objectNode() : settings.deepCopy();
    return construct(found, kind, what, () -> withSettings.newInstance(given),
        "a public class with a public constructor (com.fasterxml.jackson.databind.JsonNode settings)");
  }

  /** {@code className} from kfold or the plugin jars, checked to be a {@code kind}. */
  private Class<?> find(String className, Class<?> kind, String what) {
    Class<?> found;
    try {
      found = Class.forName(className, false, loader);
    } catch (ClassNotFoundException | LinkageError e) {
      throw new IllegalArgumentException(what + ": the class " + className + " was not found in kfold"
          + (jars.isEmpty() ? " (no plugin jars" + (dir == null ? "" : " in " + dir) + ")" : " or the plugin jars "
          + jars) + ": " + e, e);
    }
    if (!kind.isAssignableFrom(found)) {
      throw new IllegalArgumentException(what + ": the class " + className + " (" + origin(found) + ") is not an "
          + kind.getName());
    }
    return found;
  }

  /** A constructor call, reflective. */
  private interface Construction {
    Object call() throws ReflectiveOperationException;
  }

  private <T> T construct(Class<?> found, Class<T> kind, String what, Construction construction, String expected) {
    try {
      return kind.cast(construction.call());
    } catch (InvocationTargetException e) {
      throw new IllegalArgumentException(what + ": the class " + found.getName() + " (" + origin(found)
          + ") failed in its constructor: " + e.getCause(), e.getCause());
    } catch (ReflectiveOperationException | LinkageError e) {
      throw new IllegalArgumentException(what + ": cannot create the class " + found.getName() + " (" + origin(found)
          + "), " + expected + ": " + e, e);
    }
  }

  /** A class the plugins offer, and the jar that lists it. */
  public record Service<T>(T instance, String className, Path jar) {}

  /**
   * An instance of each class that a plugin jar lists in {@code META-INF/services/<kind>}, the
   * format of {@link java.util.ServiceLoader}, jar by jar in name order. Read per jar (not by
   * ServiceLoader itself) so that a listed class that fails is reported with the jar that lists it.
   */
  public <T> List<Service<T>> services(Class<T> kind) {
    List<Service<T>> services = new ArrayList<>();
    for (Path jar : jars) {
      for (String className : listed(jar, "META-INF/services/" + kind.getName())) {
        services.add(new Service<>(create(className, kind, "plugins: " + jar + " lists in META-INF/services/"
            + kind.getName()), className, jar));
      }
    }
    return services;
  }

  private static List<String> listed(Path jar, String entryName) {
    try (JarFile file = new JarFile(jar.toFile())) {
      JarEntry entry = file.getJarEntry(entryName);
      if (entry == null) {
        return List.of();
      }
      try (InputStream in = file.getInputStream(entry)) {
        return new String(in.readAllBytes(), StandardCharsets.UTF_8).lines()
            .map(line -> line.replaceFirst("#.*", "").trim())
            .filter(line -> !line.isEmpty())
            .toList();
      }
    } catch (IOException e) {
      throw new IllegalArgumentException("plugins: the jar " + jar + " cannot be read: " + e, e);
    }
  }

  /** Where a class was loaded from: a plugin jar, or kfold's class path. */
  public String origin(Class<?> type) {
    CodeSource source = type.getProtectionDomain().getCodeSource();
    if (type.getClassLoader() == loader && loader instanceof URLClassLoader && source != null) {
      try {
        return "from " + Path.of(source.getLocation().toURI());
      } catch (Exception e) {
        return "from " + source.getLocation();
      }
    }
    return "from kfold's class path";
  }

  @Override
  public void close() {
    if (loader instanceof URLClassLoader plugins) {
      try {
        plugins.close();
      } catch (IOException e) {
        throw new UncheckedIOException("plugins: closing the jars of " + dir, e);
      }
    }
  }
}
