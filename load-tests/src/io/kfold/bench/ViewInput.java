package io.kfold.bench;

import org.apache.kafka.clients.admin.Admin;

import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Map;
import java.util.TreeMap;

/**
 * The views benchmark's input: the lives of {@code orders} orders of the example type, as kfold's
 * envelopes written straight to {@code <app>.orders.events}, and what the {@code customers} view must
 * hold after them.
 *
 * <p>Every order is placed ({@code OrderPlaced}: customer, one item, total); 70% are then paid
 * ({@code OrderPaid}, exactly the total), half of those shipped ({@code OrderShipped}), and half of
 * the unpaid ones cancelled ({@code OrderCancelled}): about 2.2 events per order. Which fate an order
 * has follows from a hash of its number, so it is the same in every run and in every reader. Order
 * {@code i} belongs to customer {@code i % customers} ({@code c<n>@example.com}).
 *
 * <p>The events are written in waves of {@link #WAVE} orders: each wave places its orders, interleaved
 * with the payments of the wave before and the shipments and cancellations of the one before that,
 * so an order's events are far apart in the log and a poll holds every kind of event, as in a shop
 * that runs. Each envelope carries its time (one millisecond after the one before, written with
 * nine fraction digits), so the {@code placedAt} of an order is the same in every reader; kfold reads
 * an envelope's time instead of the record's timestamp.
 *
 * <p>The {@code customers} view counts the orders paid or shipped: per customer their number, the
 * sum of their totals and the first and last {@code placedAt}. {@link #expectedCustomers()}
 * recomputes it from the input alone, the reference both kfold's and the Streams app's rows are
 * checked against. This class is also compiled into the Streams app: it uses none of kfold's classes.
 */
final class ViewInput {

  static final String TYPE = "orders";
  static final int WAVE = 1_000;
  /** The time of the first event; every later one is a millisecond later. */
  static final Instant FIRST_TIME = Instant.parse("2026-01-01T00:00:00Z");
  /** Nine fraction digits always, as kfold writes {@code placedAt}: times of one width sort as text. */
  static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSSSSSSSS'Z'")
      .withZone(ZoneOffset.UTC);

  private static final int PLACED = 0;
  private static final int PAID = 1;
  private static final int SHIPPED = 2;
  private static final int CANCELLED = 3;

  final String app;
  final String topic;
  final long orders;
  final int customers;
  /** Event {@code s} of the log: {@code order * 4 + step}. */
  private final long[] events;
  /** The position in the log of each order's {@code OrderPlaced}: its time. */
  private final int[] placedAt;

  ViewInput(String app, long orders) {
    if (orders < 1 || orders > 50_000_000) {
      throw new IllegalArgumentException("orders must be 1 to 50,000,000, not " + orders);
    }
    this.app = app;
    this.topic = app + "." + TYPE + ".events";
    this.orders = orders;
    this.customers = (int) Math.max(1, orders / 20);
    this.placedAt = new int[(int) orders];
    long[] log = new long[(int) (orders * 3)];
    int at = 0;
    long waves = (orders + WAVE - 1) / WAVE;
    for (long wave = 0; wave < waves + 2; wave++) {
      for (long j = 0; j < WAVE; j++) {
        long placed = wave * WAVE + j;
        long paid = (wave - 1) * WAVE + j;
        long last = (wave - 2) * WAVE + j;
        if (placed < orders) {
          placedAt[(int) placed] = at;
          log[at++] = placed * 4 + PLACED;
        }
        if (paid >= 0 && paid < orders && isPaid(paid)) {
          log[at++] = paid * 4 + PAID;
        }
        if (last >= 0 && last < orders && (isShipped(last) || isCancelled(last))) {
          log[at++] = last * 4 + (isShipped(last) ? SHIPPED : CANCELLED);
        }
      }
    }
    this.events = java.util.Arrays.copyOf(log, at);
  }

  /** A well-mixed number from 0 to 19 per order: the order's fate. */
  private static int fate(long order) {
    long h = order * 0x9E3779B97F4A7C15L;
    h ^= h >>> 32;
    h *= 0xD6E8FEB86659FD93L;
    h ^= h >>> 32;
    return (int) Math.floorMod(h, 20L);
  }

  static boolean isPaid(long order) {
    return fate(order) < 14;
  }

  static boolean isShipped(long order) {
    return fate(order) < 7;
  }

  static boolean isCancelled(long order) {
    return fate(order) >= 17;
  }

  /** The status an order ends with, as the example's orders name it. */
  static String finalStatus(long order) {
    return isShipped(order) ? "shipped" : isPaid(order) ? "paid" : isCancelled(order) ? "cancelled" : "placed";
  }

  /** How many events an order gets: the version it ends at. */
  static long eventsOf(long order) {
    return 1 + (isPaid(order) ? 1 : 0) + (isShipped(order) || isCancelled(order) ? 1 : 0);
  }

  long events() {
    return events.length;
  }

  String label() {
    return String.format("%,d orders (%,d events) of %,d customers", orders, events.length, customers);
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

  /** An order's one item: its price has cents, so the sums are exact only if the readers keep them so. */
  static BigDecimal total(long order) {
    long sku = order % 97;
    return BigDecimal.valueOf((sku + 1) * 100 + 99, 2).multiply(BigDecimal.valueOf(quantity(order)));
  }

  private static long quantity(long order) {
    return 1 + order % 3;
  }

  /** The time of an order's {@code OrderPlaced} event, as kfold writes it into the state's {@code placedAt}. */
  String placedAt(long order) {
    return time(placedAt[(int) order]);
  }

  static String time(long position) {
    return TIME.format(FIRST_TIME.plusMillis(position));
  }

  String keyAt(long position) {
    return key(events[(int) position] / 4);
  }

  /** The envelope of event {@code position} of the log. */
  byte[] valueAt(long position) {
    long order = events[(int) position] / 4;
    int step = (int) (events[(int) position] % 4);
    String time = time(position);
    String json = switch (step) {
      case PLACED -> {
        long sku = order % 97;
        yield "{\"type\":\"OrderPlaced\",\"time\":\"" + time + "\",\"payload\":{\"customerEmail\":\""
            + customerOf(order) + "\",\"items\":[{\"sku\":\"sku-" + sku + "\",\"quantity\":" + quantity(order)
            + ",\"price\":" + BigDecimal.valueOf((sku + 1) * 100 + 99, 2).toPlainString() + "}],\"total\":"
            + total(order).toPlainString() + "}}";
      }
      case PAID -> "{\"type\":\"OrderPaid\",\"time\":\"" + time + "\",\"payload\":{\"amount\":"
          + total(order).toPlainString() + "}}";
      case SHIPPED -> "{\"type\":\"OrderShipped\",\"time\":\"" + time + "\",\"payload\":{}}";
      default -> "{\"type\":\"OrderCancelled\",\"time\":\"" + time + "\",\"payload\":{\"reason\":\"changed my mind\"}}";
    };
    return json.getBytes(StandardCharsets.US_ASCII);
  }

  void createTopic(Admin admin) throws Exception {
    Input.createTopic(admin, topic);
  }

  Map<String, Object> produce(String bootstrap) throws InterruptedException {
    return Input.produce(bootstrap, app + "-input", topic, events.length, this::keyAt, this::valueAt);
  }

  /** One row of the {@code customers} view. */
  record Row(long orders, BigDecimal spent, String firstOrder, String lastOrder) {

    /** Equal as the view defines it: the sums by value, not by scale. */
    boolean sameAs(Row other) {
      return other != null && orders == other.orders && spent.compareTo(other.spent) == 0
          && firstOrder.equals(other.firstOrder) && lastOrder.equals(other.lastOrder);
    }
  }

  /**
   * The {@code customers} view after the whole input, recomputed from it: customers without a paid or
   * shipped order have no row.
   */
  TreeMap<String, Row> expectedCustomers() {
    TreeMap<String, Row> rows = new TreeMap<>();
    for (long order = 0; order < orders; order++) {
      if (!isPaid(order)) {
        continue;
      }
      String at = placedAt(order);
      rows.merge(customerOf(order), new Row(1, total(order), at, at), (a, b) -> new Row(a.orders + b.orders,
          a.spent.add(b.spent), min(a.firstOrder, b.firstOrder), max(a.lastOrder, b.lastOrder)));
    }
    return rows;
  }

  /** One row of the {@code order-status} view: the orders in a status and the sum of their totals. */
  record StatusRow(long orders, BigDecimal value) {

    boolean sameAs(StatusRow other) {
      return other != null && orders == other.orders && value.compareTo(other.value) == 0;
    }
  }

  /** The {@code order-status} view after the whole input, by final status; a status no order ends in has no row. */
  TreeMap<String, StatusRow> expectedStatuses() {
    TreeMap<String, StatusRow> rows = new TreeMap<>();
    for (long order = 0; order < orders; order++) {
      rows.merge(finalStatus(order), new StatusRow(1, total(order)),
          (a, b) -> new StatusRow(a.orders + b.orders, a.value.add(b.value)));
    }
    return rows;
  }

  /** Orders that end paid or shipped: the sum of the view's counts. */
  long expectedInView() {
    long n = 0;
    for (long order = 0; order < orders; order++) {
      n += isPaid(order) ? 1 : 0;
    }
    return n;
  }

  /** Orders that end shipped. */
  long expectedShipped() {
    long n = 0;
    for (long order = 0; order < orders; order++) {
      n += isShipped(order) ? 1 : 0;
    }
    return n;
  }

  /** Up to {@code count} customers spread over all, the ones whose rows a run checks. */
  String[] sampleCustomers(int count) {
    int n = Math.min(count, customers);
    String[] sample = new String[n];
    for (int i = 0; i < n; i++) {
      sample[i] = customer((long) i * customers / n);
    }
    return sample;
  }

  private static String min(String a, String b) {
    return a.compareTo(b) <= 0 ? a : b;
  }

  private static String max(String a, String b) {
    return a.compareTo(b) >= 0 ? a : b;
  }
}
