package io.kfold.effects;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.NullNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.Iterator;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code {{path}}} templates over a change: {@code {{key}}}, {@code {{version}}}, {@code {{id}}},
 * {@code {{event.type}}}, {@code {{event.payload.total}}}, {@code {{state.items.0.sku}}}... A missing
 * path renders as an empty string (as {@code null} where it is a whole JSON value).
 */
final class Templates {

  private static final Pattern PLACEHOLDER = Pattern.compile("\\{\\{\\s*([A-Za-z0-9_.-]+)\\s*}}");

  private Templates() {}

  /** The values a template can name, for one change record ({@code id, event, state}). */
  static ObjectNode context(JsonNode change) {
    ObjectNode context = JsonNodeFactory.instance.objectNode();
    JsonNode event = change.path("event");
    context.put("id", change.path("id").asText());
    context.put("key", event.path("key").asText());
    context.put("version", event.path("version").asLong());
    context.put("entity", event.path("entity").asText());
    context.set("event", event);
    context.set("state", change.path("state"));
    return context;
  }

  static String render(String template, JsonNode context) {
    Matcher matcher = PLACEHOLDER.matcher(template);
    StringBuilder out = new StringBuilder();
    while (matcher.find()) {
      JsonNode value = lookup(context, matcher.group(1));
      String text = value.isMissingNode() || value.isNull() ? "" : value.isValueNode() ? value.asText() : value.toString();
      matcher.appendReplacement(out, Matcher.quoteReplacement(text));
    }
    matcher.appendTail(out);
    return out.toString();
  }

  /** Renders every string of a JSON template; a string that is one placeholder becomes the JSON value it names. */
  static JsonNode renderJson(JsonNode template, JsonNode context) {
    if (template.isTextual()) {
      Matcher whole = PLACEHOLDER.matcher(template.asText());
      if (whole.matches()) {
        JsonNode value = lookup(context, whole.group(1));
        return value.isMissingNode() ? NullNode.instance : value.deepCopy();
      }
      return JsonNodeFactory.instance.textNode(render(template.asText(), context));
    }
    if (template.isObject()) {
      ObjectNode out = JsonNodeFactory.instance.objectNode();
      for (Iterator<Map.Entry<String, JsonNode>> it = template.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> field = it.next();
        out.set(field.getKey(), renderJson(field.getValue(), context));
      }
      return out;
    }
    if (template.isArray()) {
      ArrayNode out = JsonNodeFactory.instance.arrayNode();
      template.forEach(item -> out.add(renderJson(item, context)));
      return out;
    }
    return template.deepCopy();
  }

  private static JsonNode lookup(JsonNode context, String path) {
    JsonNode node = context;
    for (String part : path.split("\\.")) {
      node = node.isArray() && part.chars().allMatch(Character::isDigit) ? node.path(Integer.parseInt(part)) : node.path(part);
    }
    return node;
  }
}
