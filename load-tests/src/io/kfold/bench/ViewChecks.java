package io.kfold.bench;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.types.Envelopes;
import io.kfold.store.StoredEntity;
import io.kfold.view.ViewDefinitions;
import io.kfold.view.ViewType;
import org.apache.kafka.common.TopicPartition;

import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

/**
 * What a kfold node must hold after the views benchmark's input: a fast but wrong fold does not
 * count. It runs in the fold's own JVM, after the fold ({@link KfoldRun}).
 */
final class ViewChecks {

  private static final int CHECKED_ORDERS = 200;
  private static final int CHECKED_ROWS = 200;
  /** The view's rows are folded from contributions after the orders: they may trail the orders a little. */
  private static final long ROWS_TIMEOUT_SECONDS = 120;
  /** How often the clock of the fold with views looks at the rows once the orders are folded. */
  private static final long ROWS_LOOK_NANOS = TimeUnit.MILLISECONDS.toNanos(20);

  private ViewChecks() {}

  /**
   * When the fold with views is done: every order event folded (each orders partition read to its
   * end) and every row of both views equal to the recomputation from the input. The clock of the
   * Streams baseline stops at the same point (its rows complete). The node's own counter cannot say
   * it: it counts the contributions its rows applied as well as the orders' events, and how many
   * contributions there are depends on how the polls batch an order's events.
   */
  static KfoldRun.Completion rowsComplete(ViewInput input, long events, Map<String, String> env) {
    ViewDefinitions views = ViewDefinitions.from(NodeConfig.load(env));
    return new RowsComplete(input, events, answering(views, "customers"), answering(views, "order-status"));
  }

  /**
   * The view as the benchmark reads its rows: from the first version, the one a fold on fresh
   * topics builds (the node answers from it once every partition has it; this check compares the
   * rows themselves, built or not).
   */
  private static ViewType answering(ViewDefinitions views, String name) {
    ViewType view = new ViewType(views.get(name), Input.PARTITIONS);
    view.completeEverywhere(view.target());
    return view;
  }

  private static final class RowsComplete implements KfoldRun.Completion {
    private final ViewInput input;
    private final long events;
    private final ViewType customers;
    private final ViewType statuses;
    private final List<String> customerKeys;
    private final List<ViewInput.Row> expectedCustomers = new ArrayList<>();
    private final List<String> statusKeys = List.of("placed", "paid", "shipped", "cancelled");
    private final Map<String, ViewInput.StatusRow> expectedStatuses;
    private long ordersFolded = -1;
    private long lastLook;
    private int looks;
    private long lookNanos;

    RowsComplete(ViewInput input, long events, ViewType customers, ViewType statuses) {
      this.input = input;
      this.events = events;
      this.customers = customers;
      this.statuses = statuses;
      TreeMap<String, ViewInput.Row> expected = input.expectedCustomers();
      customerKeys = new ArrayList<>();
      for (int c = 0; c < input.customers; c++) {
        customerKeys.add(ViewInput.customer(c));
        expectedCustomers.add(expected.get(ViewInput.customer(c)));
      }
      expectedStatuses = input.expectedStatuses();
    }

    @Override
    public boolean done(NodeRuntime node, long applied) {
      if (applied < events) {
        return false;  // applied counts the contributions too: necessary, not enough
      }
      long now = System.nanoTime();
      if (ordersFolded < 0) {
        if (!ordersFolded(node)) {
          return false;
        }
        ordersFolded = now;
      }
      if (now - lastLook < ROWS_LOOK_NANOS) {
        return false;
      }
      lastLook = now;
      looks++;
      // The four status rows first: cheap, and as often as not the last to be complete.
      String wrong = wrongStatusRow(node);
      if (wrong == null) {
        wrong = wrongCustomerRow(node);
      }
      lookNanos += System.nanoTime() - now;
      if (wrong != null && now - ordersFolded > TimeUnit.SECONDS.toNanos(ROWS_TIMEOUT_SECONDS)) {
        throw new IllegalStateException("a row is still wrong " + ROWS_TIMEOUT_SECONDS
            + " s after every orders event was folded: " + wrong);
      }
      return wrong == null;
    }

    /** Every orders partition is assigned to the node and read to its end. */
    private boolean ordersFolded(NodeRuntime node) {
      Map<TopicPartition, Long> lag = node.progress().lag();
      for (int p = 0; p < Input.PARTITIONS; p++) {
        Long records = lag.get(new TopicPartition(input.topic, p));
        if (records == null || records != 0) {
          return false;
        }
      }
      return true;
    }

    /** Null if every order-status row is as the input says, else the first that is not. */
    private String wrongStatusRow(NodeRuntime node) {
      List<StoredEntity> rows = node.store().getAll(statuses.name(), statusKeys);
      for (int i = 0; i < statusKeys.size(); i++) {
        JsonNode answer = statuses.answer(statusKeys.get(i), rows.get(i));
        ViewInput.StatusRow want = expectedStatuses.get(statusKeys.get(i));
        if (answer == null ? want != null : want == null || !want.sameAs(new ViewInput.StatusRow(
            answer.path("row").path("orders").asLong(-1), answer.path("row").path("value").decimalValue()))) {
          return "order-status " + statusKeys.get(i) + " is " + answer + ", expected " + want;
        }
      }
      return null;
    }

    /** Null if every customers row is as the input says, else the first that is not. */
    private String wrongCustomerRow(NodeRuntime node) {
      List<StoredEntity> rows = node.store().getAll(customers.name(), customerKeys);
      for (int i = 0; i < customerKeys.size(); i++) {
        JsonNode answer = customers.answer(customerKeys.get(i), rows.get(i));
        ViewInput.Row want = expectedCustomers.get(i);
        if (answer == null ? want != null : want == null || !want.sameAs(row(answer.path("row")))) {
          return "customers " + customerKeys.get(i) + " is " + answer + ", expected " + want;
        }
      }
      return null;
    }

    @Override
    public Map<String, Object> details(long startNanos) {
      Map<String, Object> details = new LinkedHashMap<>();
      details.put("secondsToOrdersFolded", Report.round((ordersFolded - startNanos) / 1e9, 3));
      details.put("clockStops", "every orders event folded and every row of both views equal to the recomputation");
      details.put("rowLooks", looks);
      details.put("rowLooksSeconds", Report.round(lookNanos / 1e9, 3));
      return details;
    }
  }

  private static ViewInput.Row row(JsonNode row) {
    return new ViewInput.Row(row.path("orders").asLong(-1), row.path("spent").decimalValue(),
        row.path("firstOrder").asText(), row.path("lastOrder").asText());
  }

  /** Checks a sample of orders, and with {@code rows} a sample of customers rows; answers how many. */
  static int check(NodeRuntime node, ViewInput input, boolean rows) throws Exception {
    int checked = checkOrders(node, input);
    if (rows) {
      checked += checkRows(node.httpPort(), input);
    }
    return checked;
  }

  /**
   * Each sampled order ends at the version of its event count, with the status, customer and total
   * the input gave it, and the {@code placedAt} of its {@code OrderPlaced} where the orders state has one.
   */
  private static int checkOrders(NodeRuntime node, ViewInput input) throws Exception {
    long step = Math.max(1, input.orders / CHECKED_ORDERS);
    List<String> wrong = new ArrayList<>();
    int checked = 0;
    for (long order = 0; order < input.orders; order += step) {
      String key = ViewInput.key(order);
      StoredEntity stored = node.store().get(ViewInput.TYPE, key);
      checked++;
      if (stored == null) {
        wrong.add(key + " has no state");
        continue;
      }
      JsonNode state = Envelopes.parse(stored.state());
      JsonNode placedAt = state.path("placedAt");
      if (stored.version() != ViewInput.eventsOf(order)
          || !state.path("status").asText().equals(ViewInput.finalStatus(order))
          || !state.path("customerEmail").asText().equals(input.customerOf(order))
          || state.path("total").decimalValue().compareTo(ViewInput.total(order)) != 0
          || !placedAt.isMissingNode() && !placedAt.asText().equals(input.placedAt(order))) {
        wrong.add(key + " is at version " + stored.version() + " with " + state + "; expected version "
            + ViewInput.eventsOf(order) + ", " + ViewInput.finalStatus(order) + ", placed at " + input.placedAt(order));
      }
    }
    if (!wrong.isEmpty()) {
      throw new IllegalStateException(wrong.size() + " of " + checked + " sampled orders have a wrong state, e.g. "
          + wrong.get(0));
    }
    return checked;
  }

  /**
   * A sample of the {@code customers} view's rows, read with {@code GET /v1/_views/customers/<email>},
   * must equal the recomputation from the input (a 404 where no order of the customer is paid). The
   * rows are read again until they do, or until the deadline: then the run fails with a wrong row.
   */
  private static int checkRows(int port, ViewInput input) throws Exception {
    Map<String, ViewInput.Row> expected = input.expectedCustomers();
    String[] sample = input.sampleCustomers(CHECKED_ROWS);
    HttpClient client = HttpClient.newHttpClient();
    long start = System.nanoTime();
    long deadline = start + TimeUnit.SECONDS.toNanos(ROWS_TIMEOUT_SECONDS);
    while (true) {
      String wrong = null;
      for (String customer : sample) {
        String found = wrongRow(client, port, customer, expected.get(customer));
        if (found != null) {
          wrong = found;
          break;
        }
      }
      if (wrong == null) {
        System.out.printf("  %d customers rows equal the recomputation from the input, %.2f s after the fold%n",
            sample.length, (System.nanoTime() - start) / 1e9);
        return sample.length;
      }
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("a customers row is still wrong " + ROWS_TIMEOUT_SECONDS
            + " s after the fold: " + wrong);
      }
      Thread.sleep(100);
    }
  }

  /** Null if the row is as expected, else what is wrong with it. */
  private static String wrongRow(HttpClient client, int port, String customer, ViewInput.Row want) throws Exception {
    String path = "/v1/_views/customers/" + URLEncoder.encode(customer, StandardCharsets.UTF_8);
    HttpResponse<byte[]> response = client.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
        .timeout(Duration.ofSeconds(30)).build(), HttpResponse.BodyHandlers.ofByteArray());
    if (response.statusCode() == 404) {
      return want == null ? null : customer + " has no row, expected " + want;
    }
    if (response.statusCode() != 200) {
      return "GET " + path + " answered " + response.statusCode() + ": "
          + new String(response.body(), StandardCharsets.UTF_8);
    }
    JsonNode row = Envelopes.parse(response.body()).path("row");
    ViewInput.Row actual = row(row);
    return want != null && want.sameAs(actual) ? null : customer + " is " + row + ", expected " + want;
  }
}
