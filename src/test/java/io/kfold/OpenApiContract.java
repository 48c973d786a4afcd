package io.kfold;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.kfold.TestNodes.Reply;
import io.vertx.core.json.Json;
import io.vertx.core.json.JsonObject;
import io.vertx.json.schema.Draft;
import io.vertx.json.schema.JsonSchema;
import io.vertx.json.schema.JsonSchemaOptions;
import io.vertx.json.schema.OutputFormat;
import io.vertx.json.schema.OutputUnit;
import io.vertx.json.schema.Validator;

import java.util.Iterator;
import java.util.Map;

/**
 * The service's OpenAPI description as a contract for real answers: an answer must be documented
 * for its operation and status, with a schema for its content type, and its body must validate
 * against that schema. A missing operation, status or schema fails rather than passing unchecked.
 */
public final class OpenApiContract {

  private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());
  private static final ObjectMapper JSON = new ObjectMapper();

  private final JsonNode api;

  private OpenApiContract(JsonNode api) {
    this.api = api;
  }

  public static OpenApiContract parse(String yaml) throws Exception {
    return new OpenApiContract(YAML.readTree(yaml));
  }

  /** The description's paths, for comparing them with the routes served. */
  public Iterator<Map.Entry<String, JsonNode>> paths() {
    return api.path("paths").fields();
  }

  /**
   * Asserts that {@code reply}, the answer to {@code method} on the documented {@code path} (such as
   * {@code /v1/{type}/{id}}), is documented and that its body validates against the documented schema.
   */
  public void assertAnswer(String method, String path, Reply reply) {
    String where = method + " " + path + " " + reply.status();
    JsonNode operation = api.path("paths").path(path).path(method.toLowerCase());
    if (operation.isMissingNode()) {
      throw new AssertionError("no operation documented for " + method + " " + path);
    }
    JsonNode response = resolve(operation.path("responses").path(String.valueOf(reply.status())));
    if (response.isMissingNode()) {
      throw new AssertionError("status not documented: " + where + " answered " + reply.body());
    }
    String mediaType = reply.contentType() == null ? "" : reply.contentType().split(";")[0].trim();
    JsonNode schema = response.path("content").path(mediaType).path("schema");
    if (schema.isMissingNode()) {
      throw new AssertionError("no schema for " + mediaType + " in " + where);
    }
    assertValid(where, schema, reply.body());
  }

  /** Asserts that {@code body} validates against the named schema of {@code components/schemas}. */
  public void assertSchema(String name, JsonNode body) {
    JsonNode schema = api.path("components").path("schemas").path(name);
    if (schema.isMissingNode()) {
      throw new AssertionError("no schema " + name + " in components/schemas");
    }
    assertValid(name, schema, body);
  }

  private void assertValid(String where, JsonNode schema, JsonNode body) {
    JsonObject inlined = new JsonObject(JSON.convertValue(inline(schema), Map.class));
    OutputUnit result = Validator.create(JsonSchema.of(inlined),
        new JsonSchemaOptions().setDraft(Draft.DRAFT4).setBaseUri("urn:kfold:openapi")
            .setOutputFormat(OutputFormat.Basic)).validate(
        body == null ? null : Json.decodeValue(body.toString()));
    if (!result.getValid()) {
      StringBuilder errors = new StringBuilder();
      result.getErrors().forEach(error -> errors.append("\n  ").append(error.getInstanceLocation()).append(": ")
          .append(error.getError()));
      throw new AssertionError(where + ": the body does not match the documented schema:" + errors + "\nbody: " + body);
    }
  }

  /** The schema with every {@code $ref} into this description replaced by what it names. */
  private JsonNode inline(JsonNode schema) {
    JsonNode resolved = resolve(schema);
    if (resolved.isObject()) {
      ObjectNode copy = JSON.createObjectNode();
      resolved.fields().forEachRemaining(field -> copy.set(field.getKey(), inline(field.getValue())));
      // OpenAPI 3.0's "nullable: true" is JSON Schema's null among the types.
      if (copy.path("nullable").asBoolean(false) && copy.path("type").isTextual()) {
        copy.putArray("type").add(resolved.get("type").asText()).add("null");
      }
      return copy;
    }
    if (resolved.isArray()) {
      var copy = JSON.createArrayNode();
      resolved.forEach(item -> copy.add(inline(item)));
      return copy;
    }
    return resolved;
  }

  private JsonNode resolve(JsonNode node) {
    JsonNode ref = node.path("$ref");
    if (!ref.isTextual()) {
      return node;
    }
    JsonNode target = api.at(ref.asText().substring(1));
    if (target.isMissingNode()) {
      throw new AssertionError("dangling $ref " + ref.asText());
    }
    return resolve(target);
  }
}
