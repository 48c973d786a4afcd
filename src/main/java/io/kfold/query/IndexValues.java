package io.kfold.query;

import com.fasterxml.jackson.core.JsonPointer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.POJONode;
import com.fasterxml.jackson.databind.util.RawValue;
import io.kfold.types.Envelopes;
import io.kfold.entity.IndexDefinition;

import java.io.IOException;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The values an index holds for a state, each as bytes whose unsigned lexicographic order is the
 * index's order. The store keeps entries in that byte order, so a range of values is a range of keys.
 *
 * <p>Strings are their UTF-8 bytes. Numbers use an order-preserving encoding of their exact
 * decimal value (no rounding through a double, whatever their size or precision): a sign byte, the
 * decimal exponent, then the digits; see {@link #number}.
 */
public final class IndexValues {

  /** Each index's path compiled once, as the fold asks for the values of every entity it writes. */
  private static final Map<String, JsonPointer> POINTERS = new ConcurrentHashMap<>();

  private IndexValues() {}

  /**
   * The distinct values of the index in {@code state}, in the index's order: the value at its path,
   * or each element when it is an array; none when it is missing, null, an object, or (for a number
   * index) not a number.
   */
  public static List<byte[]> of(JsonNode state, IndexDefinition index) {
    JsonNode value = at(state, POINTERS.computeIfAbsent(index.path(), JsonPointer::compile));
    List<byte[]> values = new ArrayList<>();
    if (value == null) {
      return values;
    }
    if (value.isArray()) {
      for (JsonNode element : value) {
        addEncoded(values, plain(element), index.kind());
      }
    } else {
      addEncoded(values, value, index.kind());
    }
    values.sort(Arrays::compareUnsigned);
    List<byte[]> distinct = new ArrayList<>(values.size());
    for (byte[] v : values) {
      if (distinct.isEmpty() || !Arrays.equals(distinct.get(distinct.size() - 1), v)) {
        distinct.add(v);
      }
    }
    return distinct;
  }

  private static void addEncoded(List<byte[]> values, JsonNode scalar, IndexDefinition.Kind kind) {
    byte[] encoded = encode(scalar, kind);
    if (encoded != null) {
      values.add(encoded);
    }
  }

  /** The encoded value of a scalar, or null when the index leaves it out. */
  static byte[] encode(JsonNode scalar, IndexDefinition.Kind kind) {
    if (scalar == null || scalar.isNull() || scalar.isContainerNode() || scalar.isMissingNode()) {
      return null;
    }
    return switch (kind) {
      case STRING -> scalar.isTextual() ? scalar.textValue().getBytes(StandardCharsets.UTF_8)
          : scalar.isNumber() || scalar.isBoolean() ? scalar.toString().getBytes(StandardCharsets.UTF_8) : null;
      case NUMBER -> scalar.isNumber() ? number(scalar.decimalValue()) : null;
    };
  }

  /**
   * A value given in a query, encoded as the index holds it.
   *
   * @throws IllegalArgumentException when a number index is given something else than a number
   */
  public static byte[] parse(String text, IndexDefinition.Kind kind) {
    return switch (kind) {
      case STRING -> text.getBytes(StandardCharsets.UTF_8);
      case NUMBER -> {
        try {
          yield number(new BigDecimal(text.trim()));
        } catch (NumberFormatException e) {
          throw new IllegalArgumentException("'" + text + "' is not a number");
        }
      }
    };
  }

  /**
   * An encoding of a decimal whose unsigned byte order is numeric order. With x = 0.d1d2…dn × 10^e
   * (d1 not 0, trailing zeros dropped, so equal values encode alike):
   * <ul>
   *   <li>zero: {@code 0x02};
   *   <li>positive: {@code 0x03}, e as a sortable long, then each digit as d+1 (a shorter digit
   *       string that is a prefix of a longer one is the smaller number, as bytes compare);
   *   <li>negative: {@code 0x01}, -e as a sortable long (a larger exponent is a smaller number),
   *       each digit as 10-d, then {@code 0xFF} (so that a prefix sorts after its extensions:
   *       -0.12 &gt; -0.123).
   * </ul>
   */
  static byte[] number(BigDecimal value) {
    if (value.signum() == 0) {
      return new byte[] {0x02};
    }
    BigDecimal stripped = value.stripTrailingZeros();
    String digits = stripped.unscaledValue().abs().toString();
    long exponent = (long) stripped.precision() - stripped.scale();
    boolean negative = stripped.signum() < 0;
    ByteBuffer out = ByteBuffer.allocate(1 + 8 + digits.length() + 1);
    out.put(negative ? (byte) 0x01 : (byte) 0x03);
    out.putLong((negative ? -exponent : exponent) ^ Long.MIN_VALUE);
    for (int i = 0; i < digits.length(); i++) {
      int digit = digits.charAt(i) - '0';
      out.put((byte) (negative ? 10 - digit : digit + 1));
    }
    if (negative) {
      out.put((byte) 0xFF);
    }
    return Arrays.copyOf(out.array(), out.position());
  }

  /**
   * The node at {@code pointer}, or null. A merge type's state keeps members it did not change as
   * their JSON text (a {@code POJONode} holding a {@link RawValue}); those met on the way are parsed.
   * Views read their keys and values through it too.
   */
  public static JsonNode at(JsonNode state, JsonPointer pointer) {
    JsonNode node = plain(state);
    for (JsonPointer rest = pointer; !rest.matches(); rest = rest.tail()) {
      if (node == null) {
        return null;
      }
      if (node.isObject()) {
        node = plain(node.get(rest.getMatchingProperty()));
      } else if (node.isArray() && rest.getMatchingIndex() >= 0) {
        node = plain(node.get(rest.getMatchingIndex()));
      } else {
        return null;
      }
    }
    return node == null || node.isMissingNode() || node.isNull() ? null : node;
  }

  private static JsonNode plain(JsonNode node) {
    if (node instanceof POJONode pojo && pojo.getPojo() instanceof RawValue raw) {
      try {
        return Envelopes.parse(raw.rawValue().toString().getBytes(StandardCharsets.UTF_8));
      } catch (IOException e) {
        throw new IllegalStateException("a state member is not JSON: " + e.getMessage(), e);
      }
    }
    return node;
  }
}
