package io.kfold.bench;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.KfoldNode;
import io.kfold.entity.Envelopes;
import io.kfold.store.StoredEntity;

import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
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

  private ViewChecks() {}

  /** Checks a sample of orders, and with {@code rows} a sample of customers rows; answers how many. */
  static int check(KfoldNode node, ViewInput input, boolean rows) throws Exception {
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
  private static int checkOrders(KfoldNode node, ViewInput input) throws Exception {
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
    ViewInput.Row actual = new ViewInput.Row(row.path("orders").asLong(-1), row.path("spent").decimalValue(),
        row.path("firstOrder").asText(), row.path("lastOrder").asText());
    return want != null && want.sameAs(actual) ? null : customer + " is " + row + ", expected " + want;
  }
}
