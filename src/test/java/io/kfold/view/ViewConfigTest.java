package io.kfold.view;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.config.NodeConfig;
import io.kfold.TestNodes;
import io.kfold.entity.ViewDefinition;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Views in configuration: the shipped ones, Java ones, and each bad definition's message. */
class ViewConfigTest {

  /** A view in Java: orders per SKU of their first item, which configuration cannot say. */
  public static final class FirstSkuView implements ViewDefinition {
    private static final JsonNodeFactory JSON = JsonNodeFactory.instance;

    @Override
    public String name() {
      return "first-sku";
    }

    @Override
    public List<String> from() {
      return List.of("orders");
    }

    @Override
    public String fingerprint() {
      return "first-sku/1";
    }

    @Override
    public Share share(String type, JsonNode state) {
      JsonNode sku = state.path("items").path(0).path("sku");
      return sku.isTextual() ? new Share(sku.asText(), JSON.objectNode()) : null;
    }

    @Override
    public ObjectNode emptyRow() {
      return JSON.objectNode().put("orders", 0);
    }

    @Override
    public ObjectNode add(ObjectNode row, JsonNode values) {
      return row.put("orders", row.path("orders").asLong() + 1);
    }

    @Override
    public ObjectNode subtract(ObjectNode row, JsonNode values) {
      return row.put("orders", row.path("orders").asLong() - 1);
    }

    @Override
    public JsonNode answer(ObjectNode row) {
      return row;
    }
  }

  /** The shipped configuration with its views replaced by {@code views} (YAML list items), loaded. */
  private static NodeConfig withViews(String views) {
    try {
      String shipped = Files.readString(Path.of("conf", "kfold.yaml"));
      int start = shipped.indexOf("\nviews:\n") + "\nviews:\n".length();
      int end = shipped.indexOf("\n# Side-effect workers");
      assertThat(start).isPositive();
      Path file = TestNodes.tempDir("views").resolve("kfold.yaml");
      Files.writeString(file, shipped.substring(0, start) + views + shipped.substring(end));
      return NodeConfig.load(Map.of("KFOLD_CONFIG", file.toString()));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static final String GOOD = """
        - name: customers
          from: [orders]
          key: /customerEmail
          fields: {orders: count, spent: {sum: /total}}
      """;

  @Test
  @DisplayName("the shipped configuration declares the customers and order-status views")
  void shippedViews() {
    ViewDefinitions views = ViewDefinitions.from(NodeConfig.load(Map.of()));
    assertThat(views.all()).extracting(ViewDefinition::name).containsExactly("customers", "order-status");
    assertThat(views.readingFrom("orders")).hasSize(2);
    assertThat(views.readingFrom("users")).isEmpty();
    ConfiguredView customers = (ConfiguredView) views.get("customers");
    assertThat(customers.key()).isEqualTo("/customerEmail");
    assertThat(customers.fields()).extracting(ConfiguredView.Field::name)
        .containsExactly("orders", "spent", "firstOrder", "lastOrder");
    assertThat(customers.share("orders", JsonNodeFactory.instance.objectNode().put("customerEmail", "a@x")
        .put("status", "placed"))).as("where: paid or shipped").isNull();
  }

  @Test
  @DisplayName("a Java view named by class: counts with the declared ones")
  void javaView() {
    ViewDefinitions views = ViewDefinitions.from(withViews(GOOD + """
        - name: first-sku
          class: io.kfold.view.ViewConfigTest$FirstSkuView
      """));
    assertThat(views.get("first-sku")).isInstanceOf(FirstSkuView.class);
    assertThat(views.readingFrom("orders")).extracting(ViewDefinition::name).containsExactly("customers", "first-sku");
    assertThatThrownBy(() -> ViewDefinitions.from(withViews("""
        - name: skus
          class: io.kfold.view.ViewConfigTest$FirstSkuView
      """))).hasMessageContaining("view 'skus' names class io.kfold.view.ViewConfigTest$FirstSkuView whose name() is"
        + " 'first-sku'");
    assertThatThrownBy(() -> ViewDefinitions.from(withViews("""
        - name: nothing
          class: io.kfold.view.NoSuchView
      """))).hasMessageContaining("view 'nothing': the class io.kfold.view.NoSuchView was not found");
    assertThatThrownBy(() -> ViewDefinitions.from(withViews("""
        - name: first-sku
          class: io.kfold.view.ViewConfigTest$FirstSkuView
          key: /x
      """))).hasMessageContaining("'views[0].key': a view with a 'class' is defined by its class; remove 'key'");
    assertThatThrownBy(() -> ViewDefinitions.of(List.of(new FirstSkuView()), java.util.Set.of("users")))
        .hasMessageContaining("view 'first-sku' reads the unknown type 'orders'");
  }

  @Test
  @DisplayName("each bad definition stops the start, naming its place and what is wrong")
  void badDefinitions() {
    bad("""
        - name: customers
          from: [order]
          key: /customerEmail
          fields: {orders: count}
      """, "'views[0].from': unknown type \"order\" — did you mean 'orders'?");
    bad("""
        - name: customers
          key: /customerEmail
          fields: {orders: count}
      """, "'views[0].from': name the entity types");
    bad("""
        - name: customers
          from: [orders]
          key: customerEmail
          fields: {orders: count}
      """, "'views[0].key': 'customerEmail' is not a JSON pointer");
    bad("""
        - name: customers
          from: [orders]
          key: /customerEmail
          where: {status: [paid]}
          fields: {orders: count}
      """, "'views[0].where.status': 'status' is not a JSON pointer");
    bad("""
        - name: customers
          from: [orders]
          key: /customerEmail
          where: {/status: [{a: 1}]}
          fields: {orders: count}
      """, "'views[0].where./status': allows {\"a\":1}");
    bad("""
        - name: customers
          from: [orders]
          key: /customerEmail
          fields: {spent: {sum: total}}
      """, "'views[0].fields.spent': 'total' is not a JSON pointer");
    bad("""
        - name: customers
          from: [orders]
          key: /customerEmail
          fields: {orders: cnt}
      """, "'views[0].fields.orders': unknown aggregate 'cnt' — did you mean 'count'?");
    bad("""
        - name: customers
          from: [orders]
          key: /customerEmail
          fields: {spent: {summ: /total}}
      """, "unknown key 'views[0].fields.spent.summ' — did you mean 'views[0].fields.spent.sum'?");
    bad("""
        - name: customers
          from: [orders]
          key: /customerEmail
          fields: {spent: sum}
      """, "'views[0].fields.spent': 'sum' aggregates the values at a pointer: write {sum: /path}");
    bad("""
        - name: customers
          from: [orders]
          key: /customerEmail
          fields: {orders: {count: /x}}
      """, "'views[0].fields.orders': count takes no pointer");
    bad("""
        - name: customers
          from: [orders]
          key: /customerEmail
          fields: {_orders: count}
      """, "'views[0].fields._orders': field name '_orders' is invalid");
    bad("""
        - name: customers
          from: [orders]
          key: /customerEmail
          fields: {}
      """, "'views[0].fields': expected the fields by name");
    bad(GOOD + GOOD, "'views[1].name': the view 'customers' is declared twice");
    bad(GOOD.replace("customers", "Customers"), "'views[0].name': 'Customers' is not a view name");
    bad(GOOD.replace("customers", "by.customer"), "'views[0].name': 'by.customer' is not a view name");
    bad(GOOD.replace("key:", "kee:"), "unknown key 'views[0].kee' — did you mean 'views[0].key'?");
  }

  private static void bad(String views, String message) {
    assertThatThrownBy(() -> ViewDefinitions.from(withViews(views))).isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining(message);
  }
}
