package io.kfold.bench;

import org.apache.kafka.clients.admin.Admin;

import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * The query benchmark's input: {@code entities} orders of the example type, each placed by one
 * {@code OrderPlaced} event written straight to {@code <app>.orders.events}, by {@code customers}
 * customers.
 *
 * <p>Order {@code i} ({@code order-<i>}) belongs to customer {@code i % customers}
 * ({@code c<n>@example.com}), so every customer has the same number of orders, spread over all
 * partitions: a query of one customer needs every partition's owner. Its state ends as
 * {@code {"status": "placed", "customerEmail": ..., "items": [...], "total": ...}} at version 1,
 * indexed by the two default orders indexes ({@code customer}, {@code status}).
 */
final class OrderInput {

  static final String TYPE = "orders";

  final String app;
  final String topic;
  final long entities;
  final int customers;

  OrderInput(String app, long entities, int customers) {
    this.app = app;
    this.topic = app + "." + TYPE + ".events";
    this.entities = entities;
    this.customers = customers;
  }

  static String key(long order) {
    return "order-" + order;
  }

  static String customer(long customer) {
    return "c" + customer + "@example.com";
  }

  String customerOf(long order) {
    return customer(order % customers);
  }

  /** Orders per customer: every customer has this many, or one more. */
  long perCustomer() {
    return entities / customers;
  }

  /**
   * An envelope with a type and payload as the fold reads from an outside producer: the type's
   * {@code apply} makes the state of it. The items vary a little so that states are not all alike.
   */
  byte[] value(long order) {
    long sku = order % 97;
    String json = "{\"type\":\"OrderPlaced\",\"payload\":{\"customerEmail\":\"" + customerOf(order) + "\","
        + "\"items\":[{\"sku\":\"sku-" + sku + "\",\"quantity\":1,\"price\":" + (sku + 1) + "}],"
        + "\"total\":" + (sku + 1) + "}}";
    return json.getBytes(StandardCharsets.US_ASCII);
  }

  void createTopic(Admin admin) throws Exception {
    Input.createTopic(admin, topic);
  }

  Map<String, Object> produce(String bootstrap) throws InterruptedException {
    return Input.produce(bootstrap, app + "-input", topic, entities, OrderInput::key, this::value);
  }
}
