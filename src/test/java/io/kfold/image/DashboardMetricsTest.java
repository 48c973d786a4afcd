package io.kfold.image;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.kfold.KfoldProcess;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.IOException;
import java.net.HttpURLConnection;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The Grafana dashboard and the Prometheus alert rules of docker/ name only metrics kfold exports:
 * a typo or a renamed metric would leave a panel empty or an alert silent, with no error anywhere.
 */
@ExtendWith(TestBroker.class)
class DashboardMetricsTest {

  private static final Path DASHBOARD = Path.of("docker", "grafana", "dashboards", "kfold.json");
  private static final Path RULES = Path.of("docker", "prometheus", "alerts.yml");
  private static final Pattern METRIC = Pattern.compile("\\b(?:kfold|vertx|kafka)_[A-Za-z0-9_]+");

  @Test
  @DisplayName("the rules file has the alerts the README names, each with an expression and a duration")
  void rulesHaveTheAlerts() throws Exception {
    assertThat(referenced()).as("the dashboard and rules name metrics at all").hasSizeGreaterThan(20);

    // The rules file as Prometheus reads it: groups of rules, each an alert with an expression.
    JsonNode rules = new ObjectMapper(new YAMLFactory()).readTree(RULES.toFile());
    assertThat(rules.path("groups").size()).isEqualTo(1);
    JsonNode group = rules.path("groups").get(0);
    assertThat(group.path("name").asText()).isEqualTo("kfold");
    Map<String, String> alerts = new java.util.LinkedHashMap<>();
    group.path("rules").forEach(rule -> {
      assertThat(rule.path("expr").asText()).as("%s's expr", rule.path("alert")).isNotBlank();
      assertThat(rule.path("for").asText()).as("%s's for", rule.path("alert")).matches("\\d+[smh]");
      alerts.put(rule.path("alert").asText(), rule.path("expr").asText());
    });
    assertThat(alerts).containsOnlyKeys("KfoldFoldLagGrowing", "KfoldEffectLagGrowing", "KfoldEntitiesParked",
        "KfoldBreakerOpen", "KfoldLoopDown", "KfoldNodeDown");
    assertThat(alerts.get("KfoldFoldLagGrowing")).contains("deriv(kfold_fold_lag_records[");
    assertThat(alerts.get("KfoldEntitiesParked")).isEqualTo("kfold_effect_parked_entities > 0");
    assertThat(alerts.get("KfoldBreakerOpen")).isEqualTo("kfold_effect_breaker_open == 1");
    assertThat(alerts.get("KfoldLoopDown")).isEqualTo("kfold_loop_up == 0");
  }

  /**
   * Every kfold_/vertx_/kafka_ metric they name is in a real node's scrape: kfold as a process
   * (Main, whose Vert.x reports HTTP metrics), with the default configuration's worker, after a
   * command through its API.
   */
  @Test
  @DisplayName("every metric the dashboard and the alert rules name appears in a running node's /metrics")
  void scrapedNodeExportsEveryReferencedMetric() throws Exception {
    Path dir = TestNodes.tempDir("dashboard-node");
    KfoldProcess node = new KfoldProcess(TestNodes.env(TestNodes.newApp("dashboard"), dir), dir.resolve("kfold.log"));
    node.start();
    try {
      node.awaitStatus("/ready", 200);
      int placed = post(node.port(), "/v1/orders/dashboard-1/commands",
          "{\"type\":\"place\",\"payload\":{\"customerEmail\":\"ada@example.com\",\"items\":[{\"sku\":\"book\",\"quantity\":1,\"price\":10}]}}");
      assertThat(placed).isEqualTo(200);
      String scrape = node.get("/metrics");
      Set<String> exported = scrape.lines().filter(line -> !line.startsWith("#") && !line.isBlank())
          .map(line -> line.split("[{ ]", 2)[0]).collect(Collectors.toCollection(TreeSet::new));
      assertThat(referenced()).as("metrics named in %s or %s missing from a node's /metrics", DASHBOARD, RULES)
          .isSubsetOf(exported);
    } finally {
      node.stop();
    }
  }

  /** The kfold_, vertx_ and kafka_ names in the dashboard's queries and the rules' expressions. */
  private static Set<String> referenced() throws IOException {
    List<String> expressions = new ArrayList<>();
    new ObjectMapper().readTree(DASHBOARD.toFile()).findValues("expr").forEach(expr -> expressions.add(expr.asText()));
    new ObjectMapper(new YAMLFactory()).readTree(RULES.toFile()).findValues("expr")
        .forEach(expr -> expressions.add(expr.asText()));
    Set<String> names = new TreeSet<>();
    for (String expression : expressions) {
      Matcher matcher = METRIC.matcher(expression);
      while (matcher.find()) {
        names.add(matcher.group());
      }
    }
    return names;
  }

  private static int post(int port, String path, String body) throws IOException {
    HttpURLConnection connection = (HttpURLConnection) URI.create("http://127.0.0.1:" + port + path).toURL().openConnection();
    connection.setRequestMethod("POST");
    connection.setDoOutput(true);
    connection.setRequestProperty("content-type", "application/json");
    connection.getOutputStream().write(body.getBytes(StandardCharsets.UTF_8));
    try {
      return connection.getResponseCode();
    } finally {
      connection.disconnect();
    }
  }
}
