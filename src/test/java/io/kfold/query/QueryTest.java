package io.kfold.query;

import io.kfold.store.IndexScan;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** How query parameters become a query, and the clear errors bad ones get (each a 400 for the HTTP route). */
class QueryTest {

  @Test
  @DisplayName("an equality is scanned before a range, then by index name; the others are filters; limit defaults to 50")
  void scannedCondition() {
    Query query = parse(Map.of("n.from", "1", "tag", "a", "city", "Oslo"));
    assertThat(query.scannedIndex()).isEqualTo("city");
    assertThat(query.filters()).extracting(c -> c.index().name()).containsExactly("tag", "n");
    assertThat(query.limit()).isEqualTo(50);
    assertThat(parse(Map.of("n.to", "1")).scannedIndex()).isEqualTo("n");
    assertThat(parse(Map.of("limit", "1000", "fields", "key")).scannedIndex()).isEmpty();
  }

  @Test
  @DisplayName("a cursor gives back its position, and only to a query of the same index")
  void cursors() {
    String cursor = Query.cursor("tag", new IndexScan.Position("a\u0000b".getBytes(StandardCharsets.UTF_8), "k/1"));
    Query next = parse(Map.of("tag", "x", "after", cursor));
    assertThat(new String(next.after().value(), StandardCharsets.UTF_8)).isEqualTo("a\u0000b");
    assertThat(next.after().key()).isEqualTo("k/1");
    assertThatThrownBy(() -> parse(Map.of("city", "x", "after", cursor)))
        .hasMessageContaining("'after' is the cursor of another query (of index 'tag')");
    assertThatThrownBy(() -> parse(Map.of("after", "not-a-cursor"))).hasMessageContaining("'after' is not a cursor");
  }

  @Test
  @DisplayName("unknown index, limit 0 or above 1000, bad fields, a word for a number, a value and a range together: refused")
  void badQueries() {
    assertThatThrownBy(() -> parse(Map.of("colour", "red"))).hasMessageContaining("'colour' names no index of items")
        .hasMessageContaining("[tag, n, city]");
    assertThatThrownBy(() -> parse(Map.of("tag.since", "a"))).hasMessageContaining("'tag.since' names no index");
    assertThatThrownBy(() -> parse(Map.of("limit", "0"))).hasMessageContaining("limit is '0'");
    assertThatThrownBy(() -> parse(Map.of("limit", "1001"))).hasMessageContaining("from 1 to 1000");
    assertThatThrownBy(() -> parse(Map.of("fields", "all"))).hasMessageContaining("fields is 'all'");
    assertThatThrownBy(() -> parse(Map.of("n", "ten"))).hasMessageContaining("index 'n' holds numbers: 'ten' is not a number");
    assertThatThrownBy(() -> parse(Map.of("tag", "a", "tag.from", "b"))).hasMessageContaining("both a value and a range");
    assertThatThrownBy(() -> Query.parse("items", IndexFoldTestTypes.INDEXES, Map.of("tag", List.of("a", "b"))))
        .hasMessageContaining("'tag' is given 2 times");
  }

  private static Query parse(Map<String, String> parameters) {
    Map<String, List<String>> multi = new LinkedHashMap<>();
    parameters.forEach((name, value) -> multi.put(name, List.of(value)));
    return Query.parse("items", IndexFoldTestTypes.INDEXES, multi);
  }
}
