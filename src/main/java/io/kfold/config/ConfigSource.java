package io.kfold.config;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLGenerator;
import io.kfold.config.ConfigKeys;
import io.kfold.config.NodeConfig;
import io.kfold.log.KafkaClients;
import io.vertx.core.json.JsonObject;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The configuration as kfold reads it, in layers: the defaults bundled with kfold, the user's file
 * ({@code KFOLD_CONFIG}) merged over them, the {@code KFOLD_*} variables over both, then every
 * {@code ${file:path}} and {@code ${env:NAME}} reference replaced by what it names. It remembers
 * which values are secrets, so that the configuration can be shown without them.
 */
public final class ConfigSource {

  /** The configuration could not be read: every problem found, each a sentence. */
  public static final class Problems extends IllegalArgumentException {
    private final List<String> problems;

    Problems(String where, List<String> problems) {
      super(where + ": " + String.join("; ", problems));
      this.problems = List.copyOf(problems);
    }

    public List<String> problems() {
      return problems;
    }
  }

  /** Shown instead of a secret. */
  public static final String MASK = "<masked>";

  private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory()
      .disable(YAMLGenerator.Feature.WRITE_DOC_START_MARKER).enable(YAMLGenerator.Feature.MINIMIZE_QUOTES));
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Pattern REFERENCE = Pattern.compile("\\$\\{(file|env):([^}]*)}");
  /** Key names that hold a secret wherever they are: a worker's SMTP password, a header with a token. */
  private static final Pattern SECRET_NAME =
      Pattern.compile("password|passwd|secret|token|credential|jaas|private|authorization|api[-_.]?key");
  /** The sections that make up the application: the defaults' views and workers refer to the defaults' types. */
  private static final String TYPES = "types";

  private final ObjectNode tree;
  private final Set<String> secretPaths;
  private final Set<String> secretValues;

  private ConfigSource(ObjectNode tree, Set<String> secretPaths, Set<String> secretValues) {
    this.tree = tree;
    this.secretPaths = secretPaths;
    this.secretValues = secretValues;
  }

  /**
   * Reads every layer. A user's file names only what it changes: sections merge key by key, a list
   * replaces the default one. Types, views and workers are the application, not settings: a file that
   * declares {@code types} brings its own views and workers (none when it names none), and a file that
   * declares {@code effects} its own workers, since the defaults' ones serve the example types.
   *
   * @throws Problems naming each unknown key or variable and each reference that cannot be resolved
   */
  public static ConfigSource read(Map<String, String> env) {
    String file = env.get("KFOLD_CONFIG");
    return read("configuration" + (file != null ? " " + file : ""), file == null ? null : userFile(Path.of(file)), env, env);
  }

  /**
   * The configuration of an application that embeds kfold: {@code yaml} over the bundled defaults, merged
   * as a {@code KFOLD_CONFIG} file is and checked alike. {@code KFOLD_*} variables do not apply (the
   * application's code names its configuration); {@code ${env:NAME}} references are resolved in {@code env}.
   *
   * @param where names the YAML in messages: its file, or where the code gave it
   */
  public static ConfigSource fromYaml(String where, String yaml, Map<String, String> env) {
    return fromYaml(where, yaml, Map.of(), env);
  }

  /** The same, with {@code variables}' {@code KFOLD_*} values over the YAML, as over a {@code KFOLD_CONFIG} file. */
  public static ConfigSource fromYaml(String where, String yaml, Map<String, String> variables, Map<String, String> env) {
    ObjectNode user;
    try {
      user = objectAt(YAML.readTree(yaml), where);
    } catch (IOException e) {
      throw new IllegalArgumentException("cannot read configuration " + where + ": " + e.getMessage());
    }
    return read("configuration " + where, user, variables, env);
  }

  private static ObjectNode userFile(Path file) {
    try {
      return objectAt(YAML.readTree(file.toFile()), file.toString());
    } catch (IOException e) {
      throw new IllegalArgumentException("cannot read configuration " + file + ": " + e.getMessage());
    }
  }

  /** {@code user} (null: none) over the defaults, then {@code variables}' KFOLD_* values, references resolved in {@code env}. */
  private static ConfigSource read(String where, ObjectNode user, Map<String, String> variables, Map<String, String> env) {
    JsonObject merged = new JsonObject(toMap(defaults()));
    if (user != null) {
      if (user.has(TYPES)) {
        merged.remove("views");
        merged.remove("effects");
      }
      if (user.has("effects")) {
        merged.remove("effects");
      }
      merged.mergeIn(new JsonObject(toMap(user)), true);
    }
    ObjectNode tree = fromJson(merged);
    List<String> problems = new ArrayList<>(ConfigKeys.unknownKeys(tree, NodeConfig.KEYS));
    try {
      ConfigKeys.applyEnvironment(tree, NodeConfig.KEYS, "KFOLD", variables, NodeConfig.NOT_KEYS);
    } catch (IllegalArgumentException e) {
      problems.add(e.getMessage().replaceFirst("^configuration: ", ""));
    }
    Set<String> secretPaths = new HashSet<>();
    Set<String> secretValues = new HashSet<>();
    resolve(tree, "", env, secretPaths, secretValues, problems);
    if (!problems.isEmpty()) {
      throw new Problems(where, problems);
    }
    ConfigSource source = new ConfigSource(tree, secretPaths, secretValues);
    source.collectSecretValues(tree, "");
    return source;
  }

  /** The merged, resolved tree, secrets included: for {@link NodeConfig#from} only. */
  ObjectNode tree() {
    return tree;
  }

  /** The effective configuration as YAML, each secret replaced by {@link #MASK}. */
  public String masked() {
    ObjectNode copy = tree.deepCopy();
    mask(copy, "");
    try {
      return YAML.writeValueAsString(copy);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot write the configuration as YAML", e);
    }
  }

  /** {@code text} with every secret value replaced by {@link #MASK}: for messages that quote values. */
  public String scrub(String text) {
    if (text == null) {
      return null;
    }
    String scrubbed = text;
    // The longest first, so that a secret that holds another is masked whole.
    for (String secret : secretValues.stream().sorted(Comparator.comparingInt(String::length).reversed()).toList()) {
      scrubbed = scrubbed.replace(secret, MASK);
    }
    return scrubbed;
  }

  /** Whether the value at {@code path} ({@code kafka.properties.sasl.jaas.config}) is a secret by its name. */
  static boolean secretName(String path) {
    String kafkaProperties = "kafka.properties.";
    if (path.startsWith(kafkaProperties) && KafkaClients.isPassword(path.substring(kafkaProperties.length()))) {
      return true;
    }
    String name = path.substring(path.lastIndexOf('.') + 1).replaceAll("\\[\\d+]$", "");
    String lower = name.toLowerCase(Locale.ROOT);
    // A key that names a file (auth.apiKeysFile) holds where a secret is, not the secret.
    return SECRET_NAME.matcher(lower).find() && !lower.endsWith("file")
        || path.startsWith(kafkaProperties) && name.equals("key");  // ssl.keystore.key: a private key
  }

  private boolean secret(String path) {
    return secretPaths.contains(path) || secretName(path);
  }

  private void mask(JsonNode node, String path) {
    if (node instanceof ObjectNode object) {
      for (Iterator<Map.Entry<String, JsonNode>> it = object.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> field = it.next();
        String at = join(path, field.getKey());
        if (field.getValue().isValueNode() && !field.getValue().isNull() && secret(at)) {
          field.setValue(TextNode.valueOf(MASK));
        } else {
          mask(field.getValue(), at);
        }
      }
    } else if (node.isArray()) {
      for (int i = 0; i < node.size(); i++) {
        JsonNode item = node.get(i);
        if (item.isValueNode() && !item.isNull() && secret(path + "[" + i + "]")) {
          ((com.fasterxml.jackson.databind.node.ArrayNode) node).set(i, TextNode.valueOf(MASK));
        } else {
          mask(item, path + "[" + i + "]");
        }
      }
    }
  }

  /** Values secret by their key's name join those from references: neither may appear in a message. */
  private void collectSecretValues(JsonNode node, String path) {
    if (node.isObject()) {
      node.fields().forEachRemaining(f -> collectSecretValues(f.getValue(), join(path, f.getKey())));
    } else if (node.isArray()) {
      for (int i = 0; i < node.size(); i++) {
        collectSecretValues(node.get(i), path + "[" + i + "]");
      }
    } else if (node.isValueNode() && !node.asText().isEmpty() && secret(path)) {
      secretValues.add(node.asText());
    }
  }

  /**
   * Replaces each reference in a string value by the content of the file (trimmed: files end with a
   * newline) or the variable, and marks the value secret. A reference may be part of a value, as a
   * password inside {@code sasl.jaas.config}.
   */
  private static void resolve(JsonNode node, String path, Map<String, String> env, Set<String> secretPaths,
                              Set<String> secretValues, List<String> problems) {
    if (node instanceof ObjectNode object) {
      for (Iterator<Map.Entry<String, JsonNode>> it = object.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> field = it.next();
        String at = join(path, field.getKey());
        if (field.getValue().isTextual()) {
          String resolved = resolved(field.getValue().asText(), at, env, secretValues, problems);
          if (resolved != null) {
            field.setValue(TextNode.valueOf(resolved));
            secretPaths.add(at);
          }
        } else {
          resolve(field.getValue(), at, env, secretPaths, secretValues, problems);
        }
      }
    } else if (node.isArray()) {
      for (int i = 0; i < node.size(); i++) {
        String at = path + "[" + i + "]";
        if (node.get(i).isTextual()) {
          String resolved = resolved(node.get(i).asText(), at, env, secretValues, problems);
          if (resolved != null) {
            ((com.fasterxml.jackson.databind.node.ArrayNode) node).set(i, TextNode.valueOf(resolved));
            secretPaths.add(at);
          }
        } else {
          resolve(node.get(i), at, env, secretPaths, secretValues, problems);
        }
      }
    }
  }

  /** The value with its references resolved; null when it has none. */
  private static String resolved(String value, String path, Map<String, String> env, Set<String> secretValues,
                                 List<String> problems) {
    Matcher matcher = REFERENCE.matcher(value);
    if (!matcher.find()) {
      return null;
    }
    StringBuilder out = new StringBuilder();
    do {
      String reference = matcher.group();
      String name = matcher.group(2).trim();
      String content = null;
      if (name.isEmpty()) {
        problems.add("'" + path + "' refers to " + reference + ", which names nothing");
      } else if (matcher.group(1).equals("env")) {
        content = env.get(name);
        if (content == null) {
          problems.add("'" + path + "' refers to " + reference + ", but the variable " + name + " is not set");
        }
      } else {
        try {
          content = Files.readString(Path.of(name), StandardCharsets.UTF_8).strip();
        } catch (NoSuchFileException e) {
          problems.add("'" + path + "' refers to " + reference + ", but there is no file " + name);
        } catch (IOException | RuntimeException e) {
          // The reason only (not readable, a folder): the exception never holds the content.
          problems.add("'" + path + "' refers to " + reference + ", which cannot be read: " + e.getClass().getSimpleName());
        }
      }
      if (content != null && !content.isEmpty()) {
        secretValues.add(content);
      }
      matcher.appendReplacement(out, Matcher.quoteReplacement(content == null ? "" : content));
    } while (matcher.find());
    matcher.appendTail(out);
    String whole = out.toString();
    if (!whole.isEmpty()) {
      secretValues.add(whole);
    }
    return whole;
  }

  /** The defaults: kfold's own {@code kfold.yaml}, from its classes, wherever it runs from. */
  private static ObjectNode defaults() {
    try (InputStream in = ConfigSource.class.getResourceAsStream("/kfold.yaml")) {
      if (in == null) {
        throw new IllegalStateException("the default configuration kfold.yaml is missing from kfold's classes");
      }
      return objectAt(YAML.readTree(in), "kfold.yaml");
    } catch (IOException e) {
      throw new IllegalStateException("cannot read the default configuration kfold.yaml: " + e.getMessage(), e);
    }
  }

  private static ObjectNode objectAt(JsonNode node, String file) {
    if (node instanceof ObjectNode object) {
      return object;
    }
    if (node == null || node.isMissingNode() || node.isNull()) {
      return YAML.createObjectNode();  // an empty file changes nothing
    }
    throw new IllegalArgumentException("configuration " + file + ": expected keys and values, not " + node.getNodeType());
  }

  @SuppressWarnings("unchecked")
  private static Map<String, Object> toMap(ObjectNode node) {
    return YAML.convertValue(node, Map.class);
  }

  private static ObjectNode fromJson(JsonObject json) {
    try {
      return (ObjectNode) JSON.readTree(json.encode());
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot read back the merged configuration", e);
    }
  }

  private static String join(String path, String key) {
    return path.isEmpty() ? key : path + "." + key;
  }
}
