package io.kfold.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.kfold.config.NodeConfig;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * kfold's default configuration (the copy built into its classes) as a tree, and variants of it
 * written to a file of the run that a node reads through {@code KFOLD_CONFIG}: a benchmark that
 * compares a fold with and without one feature must switch off the shipped features it does not measure.
 */
final class DefaultConfig {

  private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

  private DefaultConfig() {}

  static ObjectNode read() throws IOException {
    try (InputStream in = NodeConfig.class.getResourceAsStream("/kfold.yaml")) {
      if (in == null) {
        throw new IllegalStateException("kfold.yaml is not on the classpath: build kfold first");
      }
      return (ObjectNode) YAML.readTree(in);
    }
  }

  static boolean declaresViews(JsonNode config) {
    return config.path("views").isArray() && !config.path("views").isEmpty();
  }

  /** A copy without views ({@code views: []}): no view is folded, no contribution published. */
  static ObjectNode withoutViews(ObjectNode config) {
    ObjectNode copy = config.deepCopy();
    copy.putArray("views");
    return copy;
  }

  /** A copy whose type {@code type} declares no indexes; fails if it declared none (nothing to compare). */
  static ObjectNode withoutIndexes(ObjectNode config, String type) {
    ObjectNode copy = config.deepCopy();
    boolean found = false;
    for (JsonNode declared : copy.path("types")) {
      if (declared.path("name").asText().equals(type)) {
        found = ((ObjectNode) declared).remove("indexes") != null;
      }
    }
    if (!found) {
      throw new IllegalStateException("the default configuration declares no indexes on " + type
          + ": nothing to compare");
    }
    return copy;
  }

  static Path write(ObjectNode config, Path file) throws IOException {
    Files.createDirectories(file.getParent());
    YAML.writeValue(file.toFile(), config);
    return file;
  }
}
