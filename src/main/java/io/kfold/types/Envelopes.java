package io.kfold.types;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.util.ByteArrayBuilder;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectReader;
import com.fasterxml.jackson.databind.ObjectWriter;
import com.fasterxml.jackson.databind.cfg.JsonNodeFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.entity.Envelope;

import java.io.IOException;
import java.time.Instant;

/** JSON encoding of envelopes, shared by everything that reads or writes the log. */
public final class Envelopes {

  /**
   * Numbers are kept as they were sent: a fraction or exponent is read as a BigDecimal at its scale
   * ({@code 12.50} stays {@code 12.50}, {@code 1e400} stays {@code 1E+400}), never through a double
   * that would round it or turn it into the string "Infinity"; whole numbers beyond a long are
   * BigIntegers already. It costs a little on the fold's parse, and no second pass.
   */
  public static final ObjectMapper JSON = JsonMapper.builder()
      .enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
      .disable(JsonNodeFeature.STRIP_TRAILING_BIGDECIMAL_ZEROES)
      .build();
  private static final ObjectReader READER = JSON.reader();
  private static final ObjectWriter WRITER = JSON.writer();

  private Envelopes() {}

  public static ObjectNode toJson(Envelope e) {
    ObjectNode node = JsonNodeFactory.instance.objectNode();
    node.put("id", e.id());
    node.put("type", e.type());
    node.put("entity", e.entity());
    node.put("key", e.key());
    if (e.version() != Envelope.NO_VERSION) {
      node.put("version", e.version());
    }
    node.put("time", e.time());
    node.set("payload", e.payload());
    if (e.meta() != null) {
      node.set("meta", e.meta());
    }
    return node;
  }

  /** The bytes of {@link #toJson}, written straight from the envelope: the fold writes one per event. */
  public static byte[] toBytes(Envelope e) {
    ByteArrayBuilder bytes = new ByteArrayBuilder(256 + 2 * e.key().length());
    try (JsonGenerator out = JSON.createGenerator(bytes)) {
      out.writeStartObject();
      out.writeStringField("id", e.id());
      out.writeStringField("type", e.type());
      out.writeStringField("entity", e.entity());
      out.writeStringField("key", e.key());
      if (e.version() != Envelope.NO_VERSION) {
        out.writeNumberField("version", e.version());
      }
      out.writeStringField("time", e.time());
      out.writeFieldName("payload");
      out.writeTree(e.payload());
      if (e.meta() != null) {
        out.writeFieldName("meta");
        out.writeTree(e.meta());
      }
      out.writeEndObject();
    } catch (IOException ex) {
      throw new IllegalStateException("cannot encode JSON", ex);
    }
    return bytes.toByteArray();
  }

  public static byte[] toBytes(JsonNode node) {
    try {
      return WRITER.writeValueAsBytes(node);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot encode JSON", e);
    }
  }

  /** The JSON text of a node. */
  public static String toText(JsonNode node) {
    try {
      return WRITER.writeValueAsString(node);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot encode JSON", e);
    }
  }

  /**
   * @throws NumberNotKeptException when the JSON holds a number that cannot be kept exactly
   * @throws IOException            when it is not JSON
   */
  public static JsonNode parse(byte[] bytes) throws IOException {
    try {
      return READER.readTree(bytes);
    } catch (NumberFormatException e) {
      // A number whose exponent is beyond a BigDecimal's (about 1e±2147483647): a double would make
      // it Infinity or 0, so it is refused rather than changed.
      throw new NumberNotKeptException(e.getMessage());
    }
  }

  /**
   * Decodes a record of an events topic. A JSON object with a {@code payload} member is an
   * envelope; any other JSON object is the payload of an event from an outside producer. What the
   * record leaves out is filled in deterministically, so every node decodes it the same way: the id
   * from the record's position, the time from its timestamp.
   *
   * @throws UndecodableEventException when the record is not an event
   */
  public static Envelope decode(String entity, byte[] key, byte[] value, String topic, int partition, long offset,
                                long timestamp) {
    if (key == null || key.length == 0) {
      throw new UndecodableEventException("record has no key (the entity id)");
    }
    if (value == null) {
      throw new UndecodableEventException("record has no value");
    }
    JsonNode node;
    try {
      node = parse(value);
    } catch (NumberNotKeptException e) {
      throw new UndecodableEventException(e.getMessage());
    } catch (IOException e) {
      throw new UndecodableEventException("value is not JSON: " + e.getMessage().lines().findFirst().orElse(""));
    }
    if (node == null || !node.isObject()) {
      throw new UndecodableEventException("value is not a JSON object");
    }
    String entityKey = new String(key, java.nio.charset.StandardCharsets.UTF_8);
    String time = Instant.ofEpochMilli(Math.max(timestamp, 0)).toString();
    String id = topic + "-" + partition + "-" + offset;
    JsonNode payload = node.get("payload");
    if (payload == null) {
      return new Envelope(id, "external", entity, entityKey, Envelope.NO_VERSION, time, node, null);
    }
    JsonNode version = node.path("version");
    if (!version.isMissingNode() && !version.isNull() && !(version.canConvertToLong() && version.asLong() > 0)) {
      throw new UndecodableEventException("version must be a positive whole number, was " + version);
    }
    JsonNode meta = node.get("meta");
    if (meta != null && !meta.isObject()) {
      throw new UndecodableEventException("meta must be a JSON object");
    }
    return new Envelope(
        node.path("id").asText(id),
        node.path("type").asText("external"),
        entity,
        entityKey,
        version.asLong(Envelope.NO_VERSION),
        node.path("time").asText(time),
        payload,
        (ObjectNode) meta);
  }

  /** An envelope as kfold stores it in an entity's history. */
  public static Envelope fromJson(JsonNode node) {
    JsonNode meta = node.get("meta");
    return new Envelope(node.path("id").asText(), node.path("type").asText(), node.path("entity").asText(),
        node.path("key").asText(), node.path("version").asLong(Envelope.NO_VERSION), node.path("time").asText(),
        node.get("payload"), meta != null && meta.isObject() ? (ObjectNode) meta : null);
  }

  /** JSON with a number that kfold cannot keep exactly as it was written, so refuses. */
  public static final class NumberNotKeptException extends IOException {
    NumberNotKeptException(String reason) {
      super("a number cannot be kept exactly (exponents from -2147483647 to 2147483647 can): " + reason);
    }
  }

  /** A record that cannot be read as an event: it goes to the dead-letter topic. */
  public static final class UndecodableEventException extends RuntimeException {
    public UndecodableEventException(String message) {
      super(message);
    }
  }
}
