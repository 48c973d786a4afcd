package io.kfold.effects;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.NullNode;
import io.kfold.config.ConfigKeys;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * One side-effect worker, as configured under {@code effects.<name>} in {@code conf/kfold.yaml}.
 *
 * @param entities       the entity types whose changes it reacts to
 * @param events         the event types it reacts to; empty for all
 * @param maxInFlightKeys how many entities may have an effect running at once (events of one entity
 *                        always run one after the other)
 */
public record EffectConfig(String name, Kind kind, Delivery delivery, List<String> entities, Set<String> events,
                           int maxInFlightKeys, Retry retry, Breaker breaker, long timeoutMs, Target target) {

  public enum Kind { EMAIL, INDEX, HTTP, COMMAND, SINK }

  public enum Delivery {
    /** The offset is committed once the effect succeeded or was dead-lettered: an effect may run twice. */
    AT_LEAST_ONCE,
    /** The offset is committed before the effect runs: an effect may be lost, never run twice. */
    AT_MOST_ONCE
  }

  /** Exponential backoff: the n-th retry waits initialDelayMs * 2^(n-1), at most maxDelayMs, +/- jitter. */
  public record Retry(int attempts, long initialDelayMs, long maxDelayMs, double jitter) {}

  /** After {@code failures} failures in a row the worker stops delivering for {@code openMs}, then tries one. */
  public record Breaker(int failures, long openMs) {}

  /** Where the effect goes; each kind has its own. Strings may hold {@code {{path}}} templates. */
  public sealed interface Target permits EmailTarget, IndexTarget, HttpTarget, CommandTarget, SinkTarget {}

  public record EmailTarget(String host, int port, boolean ssl, boolean startTls, String username, String password,
                            String from, String to, String subject, String body) implements Target {}

  /** @param deleteOn event types that delete the entity: its document becomes a tombstone (see IndexSink) */
  public record IndexTarget(String url, String index, Set<String> deleteOn) implements Target {}

  public record HttpTarget(String method, String url, JsonNode body) implements Target {}

  /**
   * A reaction through kfold's own write path: a command ({@code command} set) or events
   * ({@code events} set) for the entity of type {@code entity} and id {@code id}.
   */
  public record CommandTarget(String entity, String id, JsonNode command, JsonNode events) implements Target {}

  /**
   * An application's own {@link io.kfold.entity.EffectSink}: created from {@code className} (with
   * {@code settings}, an object, or null when the configuration gives none), or the one registered
   * in code under {@code name}. Exactly one of className and name is set.
   */
  public record SinkTarget(String className, JsonNode settings, String name) implements Target {}

  private static final Pattern NAME = Pattern.compile("[a-z][a-z0-9-]{0,62}");
  /** A binary class name: packages and classes, nested ones after '$'. */
  private static final Pattern CLASS_NAME = Pattern.compile("[\\p{L}_$][\\p{L}\\p{N}_$]*(\\.[\\p{L}_$][\\p{L}\\p{N}_$]*)*");

  /** Every key of a worker, the target's by kind; {@link #from} reads these and no others. */
  public static final ConfigKeys.Section KEYS = new ConfigKeys.Section(Map.of(
      "enabled", ConfigKeys.VALUE,
      "kind", ConfigKeys.VALUE,
      "delivery", ConfigKeys.VALUE,
      "entities", ConfigKeys.VALUE,
      "events", ConfigKeys.VALUE,
      "maxInFlightKeys", ConfigKeys.VALUE,
      "timeoutMs", ConfigKeys.VALUE,
      "retry", ConfigKeys.values("attempts", "initialDelayMs", "maxDelayMs", "jitter"),
      "breaker", ConfigKeys.values("failures", "openMs"),
      "target", new ConfigKeys.ByKind("kind", Map.of(
          "email", ConfigKeys.values("host", "port", "ssl", "startTls", "username", "password", "from", "to", "subject",
              "body"),
          "index", ConfigKeys.values("url", "index", "deleteOn"),
          "http", new ConfigKeys.Section(Map.of("method", ConfigKeys.VALUE, "url", ConfigKeys.VALUE, "body", ConfigKeys.FREE)),
          "command", new ConfigKeys.Section(Map.of("entity", ConfigKeys.VALUE, "id", ConfigKeys.VALUE,
              "command", ConfigKeys.FREE, "events", ConfigKeys.FREE)),
          "sink", new ConfigKeys.Section(Map.of("class", ConfigKeys.VALUE, "settings", ConfigKeys.FREE,
              "name", ConfigKeys.VALUE))))));

  /** Reads one worker; every error names the worker and the field. */
  public static EffectConfig from(String name, JsonNode node) {
    Fields f = new Fields("effects." + name, node);
    if (!NAME.matcher(name).matches()) {
      throw f.invalid("", name, "a name of lower-case letters, digits and '-'");
    }
    Kind kind = Kind.valueOf(f.oneOf("kind", List.of("email", "index", "http", "command", "sink"), null).toUpperCase());
    Delivery delivery = Delivery.valueOf(f.oneOf("delivery", List.of("at-least-once", "at-most-once"), "at-least-once")
        .toUpperCase().replace('-', '_'));
    List<String> entities = f.texts("entities", true);
    Set<String> events = Set.copyOf(f.texts("events", false));
    JsonNode retryNode = node.path("retry");
    Fields r = new Fields("effects." + name + ".retry", retryNode);
    Retry retry = new Retry((int) r.number("attempts", 5, 1, 1000), r.number("initialDelayMs", 200, 1, 3_600_000),
        r.number("maxDelayMs", 30_000, 1, 86_400_000), r.fraction("jitter", 0.2));
    Fields b = new Fields("effects." + name + ".breaker", node.path("breaker"));
    Breaker breaker = new Breaker((int) b.number("failures", 5, 1, 1_000_000), b.number("openMs", 5_000, 1, 3_600_000));
    Fields t = new Fields("effects." + name + ".target", node.path("target"));
    Target target = switch (kind) {
      case EMAIL -> new EmailTarget(t.text("host", null), (int) t.number("port", 25, 1, 65535),
          t.bool("ssl"), t.bool("startTls"), t.text("username", ""), t.text("password", ""),
          t.text("from", null), t.text("to", null), t.text("subject", null), t.text("body", null));
      case INDEX -> new IndexTarget(t.url("url"), t.text("index", null), Set.copyOf(t.texts("deleteOn", false)));
      case HTTP -> new HttpTarget(t.oneOf("method", List.of("POST", "PUT", "PATCH", "DELETE", "GET"), "POST"),
          t.url("url"), node.path("target").path("body").isMissingNode() ? NullNode.instance : node.path("target").get("body"));
      case COMMAND -> {
        JsonNode command = node.path("target").path("command");
        JsonNode appended = node.path("target").path("events");
        if (command.isMissingNode() == appended.isMissingNode()) {
          throw t.invalid("command", "", "either 'command' ({type, payload}) or 'events' ([{type, payload}])");
        }
        if (!command.isMissingNode() && !command.path("type").isTextual()) {
          throw t.invalid("command.type", command.path("type").toString(), "a command type");
        }
        if (!appended.isMissingNode() && (!appended.isArray() || appended.isEmpty())) {
          throw t.invalid("events", appended.toString(), "a list of {type, payload}");
        }
        yield new CommandTarget(t.text("entity", null), t.text("id", null),
            command.isMissingNode() ? null : command, appended.isMissingNode() ? null : appended);
      }
      case SINK -> sinkTarget(node.path("target"), t);
    };
    return new EffectConfig(name, kind, delivery, entities, events, (int) f.number("maxInFlightKeys", 16, 1, 100_000),
        retry, breaker, f.number("timeoutMs", 10_000, 1, 3_600_000), target);
  }

  /** {@code {class, settings}} or {@code {name}}: the sink itself is created, or looked up, when the node starts. */
  private static SinkTarget sinkTarget(JsonNode target, Fields t) {
    boolean byClass = target.has("class");
    if (byClass == target.has("name")) {
      throw t.invalid("class", "", "either 'class' (a Java class, with optional 'settings') or 'name' (a sink"
          + " registered in code with KfoldNode.Options.withSink)");
    }
    if (!byClass) {
      if (target.has("settings")) {
        throw t.invalid("settings", target.get("settings").toString(), "no settings with 'name': the sink registered"
            + " in code has its own");
      }
      String name = t.text("name", null);
      if (name.isBlank()) {
        throw t.invalid("name", name, "the name a sink was registered under");
      }
      return new SinkTarget(null, null, name);
    }
    String className = t.text("class", null);
    if (!CLASS_NAME.matcher(className).matches()) {
      throw t.invalid("class", className, "a Java class name, such as com.acme.AuditSink");
    }
    JsonNode settings = target.path("settings");
    if (settings.isMissingNode() || settings.isNull()) {
      return new SinkTarget(className, null, null);
    }
    if (!settings.isObject()) {
      throw t.invalid("settings", settings.toString(), "an object, handed to the class's constructor");
    }
    return new SinkTarget(className, settings.deepCopy(), null);
  }

  /** Reads typed fields of one section, with errors that name the field. */
  private record Fields(String section, JsonNode node) {

    String text(String field, String defaultValue) {
      JsonNode value = node.path(field);
      if (value.isMissingNode() || value.isNull()) {
        if (defaultValue == null) {
          throw invalid(field, "(missing)", "a value");
        }
        return defaultValue;
      }
      if (!value.isValueNode()) {
        throw invalid(field, value.toString(), "a string");
      }
      return value.asText();
    }

    String oneOf(String field, List<String> allowed, String defaultValue) {
      String value = text(field, defaultValue);
      if (!allowed.contains(value)) {
        throw invalid(field, value, "one of " + allowed);
      }
      return value;
    }

    String url(String field) {
      String value = text(field, null);
      if (!value.startsWith("http://") && !value.startsWith("https://")) {
        throw invalid(field, value, "an http:// or https:// URL");
      }
      return value;
    }

    boolean bool(String field) {
      String value = text(field, "false");
      if (!value.equals("true") && !value.equals("false")) {
        throw invalid(field, value, "true or false");
      }
      return Boolean.parseBoolean(value);
    }

    long number(String field, long defaultValue, long min, long max) {
      String raw = text(field, Long.toString(defaultValue));
      try {
        long value = Long.parseLong(raw);
        if (value >= min && value <= max) {
          return value;
        }
      } catch (NumberFormatException e) {
        // reported below
      }
      throw invalid(field, raw, "a whole number from " + min + " to " + max);
    }

    double fraction(String field, double defaultValue) {
      String raw = text(field, Double.toString(defaultValue));
      try {
        double value = Double.parseDouble(raw);
        if (value >= 0 && value <= 1) {
          return value;
        }
      } catch (NumberFormatException e) {
        // reported below
      }
      throw invalid(field, raw, "a number from 0 to 1");
    }

    List<String> texts(String field, boolean required) {
      JsonNode value = node.path(field);
      List<String> result = new ArrayList<>();
      if (value.isTextual()) {
        result.add(value.asText());
      } else if (value.isArray()) {
        value.forEach(item -> result.add(item.asText()));
      } else if (!value.isMissingNode() && !value.isNull()) {
        throw invalid(field, value.toString(), "a list of names");
      }
      if (required && result.isEmpty()) {
        throw invalid(field, "(missing)", "a list of at least one name");
      }
      return result;
    }

    IllegalArgumentException invalid(String field, String value, String expected) {
      String path = field.isEmpty() ? section : section + "." + field;
      return new IllegalArgumentException("configuration: '" + path + "' is '" + value + "', expected " + expected);
    }
  }
}
