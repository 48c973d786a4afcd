package io.kfold.image;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.kfold.Installed;
import io.kfold.KfoldProcess;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.log.LocalBroker;
import io.kfold.types.Envelopes;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The Grafana dashboard and the Prometheus alert rules of docker/, checked by Prometheus itself:
 * promtool runs the rules' unit tests, and a real Prometheus, configured as docker/ configures it,
 * scrapes a real node with the admin key, answers every panel's query with data, evaluates every
 * rule without error, raises none while the node is healthy, and raises KfoldNodeDown once it is killed.
 * A typo or a renamed metric would otherwise leave a panel empty or an alert silent, with no error
 * anywhere.
 */
@ExtendWith(TestBroker.class)
class DashboardMetricsTest {

  private static final Path DASHBOARD = Path.of("docker", "grafana", "dashboards", "kfold.json");
  private static final Path PROMETHEUS = Path.of("docker", "prometheus");
  private static final Path RULES = PROMETHEUS.resolve("alerts.yml");
  private static final Path RULE_TESTS = PROMETHEUS.resolve("alerts.test.yml");
  private static final Pattern METRIC = Pattern.compile("\\b(?:kfold|vertx|kafka)_[A-Za-z0-9_]+");
  private static final String KEY = "an-operator-key-for-the-dashboard-test";
  private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

  private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

  @Test
  @DisplayName("promtool runs the alert rules' unit tests, which test every alert: each fires once its condition"
      + " has lasted its 'for', and not in the healthy cases")
  void alertRulesPassTheirUnitTests() throws Exception {
    Set<String> alerts = new TreeSet<>(YAML.readTree(RULES.toFile()).findValuesAsText("alert"));
    assertThat(alerts).as("the alerts of %s", RULES).containsExactlyInAnyOrder("KfoldFoldLagGrowing",
        "KfoldEffectLagGrowing", "KfoldEntitiesParked", "KfoldBreakerOpen", "KfoldLoopDown", "KfoldNodeDown");
    assertThat(new TreeSet<>(YAML.readTree(RULE_TESTS.toFile()).findValuesAsText("alertname")))
        .as("the alerts %s tests", RULE_TESTS).isEqualTo(alerts);

    Path promtool = Installed.program("promtool");
    Assumptions.assumeTrue(promtool != null, "the alert rules' unit tests need promtool on the PATH (Debian:"
        + " apt-get install prometheus)");
    Process process = new ProcessBuilder(promtool.toString(), "test", "rules", RULE_TESTS.getFileName().toString())
        .directory(PROMETHEUS.toFile()).redirectErrorStream(true).start();
    String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(process.waitFor(60, TimeUnit.SECONDS)).as("promtool ends").isTrue();
    assertThat(process.exitValue()).as("promtool test rules %s:\n%s", RULE_TESTS, output).isZero();
  }

  /**
   * kfold runs as a process (Main, whose Vert.x reports HTTP metrics) with the default
   * configuration's worker, API keys and {@code auth.metrics: admin}, as in docker/compose.yaml.
   */
  @Test
  @DisplayName("a real Prometheus configured as docker/ configures it scrapes a node, answers every panel of the"
      + " dashboard with data, evaluates every alert rule without error and raises KfoldNodeDown once the node is killed")
  void prometheusAnswersTheDashboardFromANode() throws Exception {
    Path dir = TestNodes.tempDir("dashboard-node");
    Map<String, String> env = TestNodes.withSection(TestNodes.env(TestNodes.newApp("dashboard"), dir), dir, "auth",
        "mode: api-keys\nclusterSecret: a-cluster-secret-for-the-dashboard-test\nmetrics: admin\napiKeys:\n"
            + "  operator: {sha256: " + TestNodes.sha256(KEY) + ", roles: [read, write, admin]}\n");
    KfoldProcess node = new KfoldProcess(env, dir.resolve("kfold.log"));
    Process prometheus = null;
    node.start();
    try {
      node.awaitStatus("/ready", 200);
      HttpResponse<String> placed = send(HttpRequest.newBuilder(node(node, "/v1/orders/dashboard-1/commands"))
          .header("content-type", "application/json").POST(HttpRequest.BodyPublishers.ofString("{\"type\":\"place\","
              + "\"payload\":{\"customerEmail\":\"ada@example.com\",\"items\":[{\"sku\":\"book\",\"quantity\":1,\"price\":10}]}}")));
      assertThat(placed.statusCode()).as("a command: %s", placed.body()).isEqualTo(200);

      // Every name the panels and rules use is in the scrape: the message names a missing one.
      assertThat(http.send(HttpRequest.newBuilder(node(node, "/metrics")).build(), HttpResponse.BodyHandlers.ofString())
          .statusCode()).as("/metrics without the key").isEqualTo(401);
      String scrape = send(HttpRequest.newBuilder(node(node, "/metrics"))).body();
      Set<String> exported = scrape.lines().filter(line -> !line.startsWith("#") && !line.isBlank())
          .map(line -> line.split("[{ ]", 2)[0]).collect(Collectors.toCollection(TreeSet::new));
      assertThat(referenced()).as("metrics named in %s or %s missing from a node's /metrics", DASHBOARD, RULES)
          .hasSizeGreaterThan(20).isSubsetOf(exported);

      Path program = Installed.program("prometheus");
      Assumptions.assumeTrue(program != null, "the dashboard's queries need Prometheus on the PATH (Debian:"
          + " apt-get install prometheus)");
      int port = LocalBroker.freePort();
      prometheus = new ProcessBuilder(program.toString(), "--config.file=" + prometheusConfig(dir, node.port()),
          "--storage.tsdb.path=" + dir.resolve("prometheus-data"), "--web.listen-address=127.0.0.1:" + port)
          .redirectErrorStream(true).redirectOutput(dir.resolve("prometheus.log").toFile()).start();
      URI api = URI.create("http://127.0.0.1:" + port + "/api/v1/");

      // The node scraped with the key (else the target's lastError says why), then two scrapes at
      // least: enough for the panels' rates.
      await(api, "targets", data -> data.path("activeTargets").path(0).path("health").asText().equals("up"),
          "the node scraped", prometheus, dir);
      await(api, "query?query=" + encode("count_over_time(up{job=\"kfold\"}[1m]) >= 2 and up{job=\"kfold\"} == 1"),
          data -> data.path("result").size() == 1, "two scrapes of the node, the last one up", prometheus, dir);
      List<String> empty = new ArrayList<>();
      for (String expr : dashboardQueries()) {
        JsonNode data = query(api, "query?query=" + encode(expr));
        if (data.path("result").isEmpty()) {
          empty.add(expr);
        }
      }
      assertThat(empty).as("panel queries of %s that Prometheus answers with no data from a live node", DASHBOARD)
          .isEmpty();

      // Every rule evaluated (the evaluation interval is a second) without error, and none raised.
      JsonNode rules = await(api, "rules", data -> data.findValues("rules").get(0).size() == 6
          && data.findValues("lastEvaluation").stream().noneMatch(at -> at.asText().startsWith("0001-")),
          "every rule evaluated", prometheus, dir).findValues("rules").get(0);
      rules.forEach(rule -> assertThat(rule.path("health").asText()).as("rule %s: %s", rule.path("name"),
          rule.path("lastError")).isEqualTo("ok"));
      assertThat(query(api, "alerts").path("alerts")).as("alerts raised while the node is healthy").isEmpty();

      node.kill();
      JsonNode alerts = await(api, "alerts", data -> data.path("alerts").size() > 0, "an alert once the node is killed",
          prometheus, dir).path("alerts");
      assertThat(alerts).as("alerts once the node is killed").hasSize(1);
      assertThat(alerts.get(0).path("labels").path("alertname").asText()).isEqualTo("KfoldNodeDown");
      assertThat(alerts.get(0).path("labels").path("instance").asText()).isEqualTo("127.0.0.1:" + node.port());
      assertThat(alerts.get(0).path("state").asText()).as("KfoldNodeDown's state, a minute before it fires")
          .isEqualTo("pending");
    } finally {
      if (prometheus != null) {
        prometheus.destroy();
        prometheus.waitFor(30, TimeUnit.SECONDS);
      }
      node.stopIfAlive();
    }
  }

  /**
   * docker/prometheus/prometheus.yml as it is, but scraping and evaluating every second, with the
   * rules file of the repository, this node as its target and a file holding the test's key.
   */
  private static Path prometheusConfig(Path dir, int nodePort) throws IOException {
    Path keyFile = Files.writeString(dir.resolve("admin.key"), KEY);
    ObjectNode config = (ObjectNode) YAML.readTree(PROMETHEUS.resolve("prometheus.yml").toFile());
    config.with("global").put("scrape_interval", "1s").put("evaluation_interval", "1s");
    config.putArray("rule_files").add(RULES.toAbsolutePath().toString());
    ObjectNode job = (ObjectNode) config.path("scrape_configs").get(0);
    assertThat(job.path("job_name").asText()).isEqualTo("kfold");
    ((ObjectNode) job.path("authorization")).put("credentials_file", keyFile.toString());
    ((ObjectNode) job.path("static_configs").get(0)).putArray("targets").add("127.0.0.1:" + nodePort);
    Path file = dir.resolve("prometheus.yml");
    YAML.writeValue(file.toFile(), config);
    return file;
  }

  private static List<String> dashboardQueries() throws IOException {
    return new ObjectMapper().readTree(DASHBOARD.toFile()).findValuesAsText("expr");
  }

  /** The kfold_, vertx_ and kafka_ names in the dashboard's queries and the rules' expressions. */
  private static Set<String> referenced() throws IOException {
    List<String> expressions = new ArrayList<>(dashboardQueries());
    expressions.addAll(YAML.readTree(RULES.toFile()).findValuesAsText("expr"));
    Set<String> names = new TreeSet<>();
    for (String expression : expressions) {
      Matcher matcher = METRIC.matcher(expression);
      while (matcher.find()) {
        names.add(matcher.group());
      }
    }
    return names;
  }

  private static URI node(KfoldProcess node, String path) {
    return URI.create("http://127.0.0.1:" + node.port() + path);
  }

  /** A request to the node, with the key. */
  private HttpResponse<String> send(HttpRequest.Builder request) throws IOException, InterruptedException {
    return http.send(request.header("Authorization", "Bearer " + KEY).timeout(Duration.ofSeconds(30)).build(),
        HttpResponse.BodyHandlers.ofString());
  }

  /** The {@code data} of a Prometheus API answer, which must be a success. */
  private JsonNode query(URI api, String path) throws IOException, InterruptedException {
    HttpResponse<String> answer = http.send(HttpRequest.newBuilder(api.resolve(path)).timeout(Duration.ofSeconds(30))
        .build(), HttpResponse.BodyHandlers.ofString());
    JsonNode body = Envelopes.parse(answer.body().getBytes(StandardCharsets.UTF_8));
    assertThat(body.path("status").asText()).as("Prometheus answering %s: %s", path, answer.body()).isEqualTo("success");
    return body.path("data");
  }

  /** Asks Prometheus until its answer's data passes {@code until}; Prometheus may not listen yet at first. */
  private JsonNode await(URI api, String path, Predicate<JsonNode> until, String what, Process prometheus, Path dir)
      throws Exception {
    long deadline = System.currentTimeMillis() + 60_000;
    String last = "nothing";
    while (true) {
      if (!prometheus.isAlive()) {
        throw new AssertionError("Prometheus exited; its log:\n" + Files.readString(dir.resolve("prometheus.log")));
      }
      try {
        JsonNode data = query(api, path);
        if (until.test(data)) {
          return data;
        }
        last = data.toString();
      } catch (IOException notListening) {
        last = notListening.toString();
      }
      assertThat(System.currentTimeMillis()).as("%s within 60 s; Prometheus answered %s; its log: %s", what, last,
          dir.resolve("prometheus.log")).isLessThan(deadline);
      Thread.sleep(200);
    }
  }

  private static String encode(String query) {
    return URLEncoder.encode(query, StandardCharsets.UTF_8);
  }
}
