package io.kfold.query;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.types.Envelopes;
import io.kfold.entity.IndexDefinition;
import io.kfold.entity.IndexDefinition.Kind;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class IndexValuesTest {

  @Test
  @DisplayName("numbers encode so that byte order is numeric order, exactly, at any size and precision")
  void numberOrder() {
    Random random = new Random(11);
    List<BigDecimal> numbers = new ArrayList<>(List.of(BigDecimal.ZERO, new BigDecimal("-0.12"), new BigDecimal("-0.123"),
        new BigDecimal("0.12"), new BigDecimal("0.123"), new BigDecimal("1e400"), new BigDecimal("-1e400"),
        new BigDecimal("1e-400"), new BigDecimal("9007199254740993"), new BigDecimal("9007199254740992")));
    for (int i = 0; i < 5000; i++) {
      BigDecimal n = new BigDecimal(new BigInteger(1 + random.nextInt(70), random), random.nextInt(40) - 20);
      numbers.add(random.nextBoolean() ? n : n.negate());
    }
    List<BigDecimal> byValue = new ArrayList<>(numbers);
    byValue.sort(BigDecimal::compareTo);
    List<BigDecimal> byBytes = new ArrayList<>(numbers);
    byBytes.sort((a, b) -> Arrays.compareUnsigned(IndexValues.number(a), IndexValues.number(b)));
    for (int i = 0; i < numbers.size(); i++) {
      assertThat(byBytes.get(i).compareTo(byValue.get(i))).as("position %d", i).isZero();
    }
    assertThat(IndexValues.number(new BigDecimal("10"))).isEqualTo(IndexValues.number(new BigDecimal("1e1")))
        .isEqualTo(IndexValues.number(new BigDecimal("10.000")));
    assertThat(IndexValues.parse("12.50", Kind.NUMBER)).isEqualTo(IndexValues.number(new BigDecimal("12.5")));
    assertThatThrownBy(() -> IndexValues.parse("twelve", Kind.NUMBER)).hasMessageContaining("'twelve' is not a number");
  }

  @Test
  @DisplayName("an array indexes each distinct element; missing, null and objects index nothing; numbers only in a number index")
  void valuesOfAState() throws Exception {
    JsonNode state = Envelopes.parse("{\"tags\":[\"b\",\"a\",\"b\",null,{\"x\":1},3],\"n\":null,\"o\":{\"c\":\"x\"},\"q\":2.50}"
        .getBytes(StandardCharsets.UTF_8));
    assertThat(texts(IndexValues.of(state, IndexDefinition.of("t", "/tags")))).containsExactly("3", "a", "b");
    assertThat(IndexValues.of(state, IndexDefinition.of("n", "/n"))).isEmpty();
    assertThat(IndexValues.of(state, IndexDefinition.of("m", "/missing/deeper"))).isEmpty();
    assertThat(IndexValues.of(state, IndexDefinition.of("o", "/o"))).isEmpty();
    assertThat(texts(IndexValues.of(state, IndexDefinition.of("c", "/o/c")))).containsExactly("x");
    assertThat(IndexValues.of(state, new IndexDefinition("t", "/tags", Kind.NUMBER)))
        .containsExactly(IndexValues.number(BigDecimal.valueOf(3)));
    assertThat(IndexValues.of(state, new IndexDefinition("q", "/q", Kind.NUMBER)))
        .containsExactly(IndexValues.number(new BigDecimal("2.5")));
  }

  @Test
  @DisplayName("a merge type's state, whose untouched members are kept as JSON text, indexes like its parsed form")
  void mergeStates() throws Exception {
    io.kfold.entity.MergeEntityType users = new io.kfold.entity.MergeEntityType("users");
    JsonNode state = users.initialState();
    for (String patch : List.of("{\"email\":\"a@x\",\"address\":{\"city\":\"Oslo\"},\"tags\":[\"p\",\"q\"]}", "{\"n\":1}")) {
      state = users.apply(state, new io.kfold.entity.Envelope("id", "Patched", "users", "k", 1, "2026-01-01T00:00:00Z",
          Envelopes.parse(patch.getBytes(StandardCharsets.UTF_8)), null));
    }
    assertThat(texts(IndexValues.of(state, IndexDefinition.of("email", "/email")))).containsExactly("a@x");
    assertThat(texts(IndexValues.of(state, IndexDefinition.of("city", "/address/city")))).containsExactly("Oslo");
    assertThat(texts(IndexValues.of(state, IndexDefinition.of("tags", "/tags")))).containsExactly("p", "q");
  }

  private static List<String> texts(List<byte[]> values) {
    return values.stream().map(v -> new String(v, StandardCharsets.UTF_8)).toList();
  }
}
