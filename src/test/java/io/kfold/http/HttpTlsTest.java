package io.kfold.http;

import io.kfold.Await;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.TestBroker;
import io.kfold.TestLog;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.kfold.cluster.Ownership;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.net.PemTrustOptions;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import io.vertx.ext.web.client.WebClientOptions;
import io.vertx.core.buffer.Buffer;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The HTTP API over TLS from PEM files: HTTP/2 and HTTP/1.1, a renewed certificate taken, forwarding over https. */
@ExtendWith(TestBroker.class)
class HttpTlsTest {

  private static final String PLACE =
      "{\"type\":\"place\",\"payload\":{\"customerEmail\":\"a@b.c\",\"items\":[{\"sku\":\"x\",\"quantity\":1,\"price\":5}]}}";

  /** The files of a node's TLS, in a folder of their own. */
  private record Pki(TestCa ca, Path dir, Path certificate, Path key, Path trust) {
    static Pki create(String name) {
      Path dir = TestNodes.tempDir(name + "-pki");
      Pki pki = new Pki(TestCa.create("kfold test CA " + name), dir, dir.resolve("server.pem"), dir.resolve("server.key"),
          dir.resolve("ca.pem"));
      pki.ca.writeCertificate(pki.trust);
      return pki;
    }

    Map<String, String> env(String app, String name) {
      Map<String, String> env = TestNodes.env(app, TestNodes.tempDir(name));
      env.put("KFOLD_HTTP_TLS_CERTIFICATE", certificate.toString());
      env.put("KFOLD_HTTP_TLS_KEY", key.toString());
      env.put("KFOLD_HTTP_TLS_TRUST", trust.toString());
      env.put("KFOLD_HTTP_TLS_RELOAD_CHECK_MS", "200");
      return env;
    }
  }

  @Test
  @DisplayName("a node with a certificate serves its API over https only, verified against the CA: HTTP/2 by ALPN"
      + " and HTTP/1.1, and advertises an https URL; a renewed certificate reaches new connections, files that"
      + " do not form a pair leave the old one in place")
  void servesOverTlsAndTakesRenewedCertificates() throws Exception {
    Pki pki = Pki.create("tls-one");
    TestCa.Issued first = pki.ca.issue("kfold-first");
    first.writeTo(pki.certificate, pki.key);
    NodeConfig config = NodeConfig.load(pki.env(TestNodes.newApp("tls-one"), "tls-one"));
    Vertx vertx = Vertx.vertx();
    NodeRuntime node = TestNodes.startCaughtUp(vertx, config);
    WebClient https = WebClient.create(vertx, new WebClientOptions().setSsl(true).setVerifyHost(true)
        .setTrustOptions(new PemTrustOptions().addCertPath(pki.trust.toString())));
    WebClient plain = WebClient.create(vertx);
    HttpClient h2Client = vertx.createHttpClient(h2Options(pki));
    try {
      Reply placed = TestNodes.call(https, HttpMethod.POST, node.httpPort(), "/v1/orders/t1/commands", PLACE, Map.of());
      assertThat(placed.status()).as("place over https: %s", placed.body()).isEqualTo(200);
      HttpResponse<Buffer> read = https.get(node.httpPort(), "127.0.0.1", "/v1/orders/t1").send()
          .await(30, TimeUnit.SECONDS);
      assertThat(read.statusCode()).isEqualTo(200);
      assertThat(read.version()).as("a client without ALPN").isEqualTo(HttpVersion.HTTP_1_1);
      assertThat(read.bodyAsJsonObject().getLong("version")).isEqualTo(1);

      Served h2 = served(vertx, pki, node, "/v1/orders/t1");
      assertThat(h2.version()).as("a client offering HTTP/2 by ALPN").isEqualTo(HttpVersion.HTTP_2);
      assertThat(h2.status()).isEqualTo(200);
      assertThat(h2.serial()).isEqualTo(first.serial());

      // The change stream over HTTP/2 as well.
      List<String> frames = new CopyOnWriteArrayList<>();
      HttpClientResponse stream = TestNodes.openStream(h2Client, new RequestOptions().setMethod(HttpMethod.GET)
          .setHost("127.0.0.1").setPort(node.httpPort()).setURI("/v1/orders/t1/changes"), frames).await(30, TimeUnit.SECONDS);
      assertThat(stream.version()).isEqualTo(HttpVersion.HTTP_2);
      Await.until("the stream over HTTP/2 opens with the state", () -> !frames.isEmpty());
      assertThat(frames.get(0)).startsWith("event: state\nid: 1");

      assertThatThrownBy(() -> TestNodes.call(plain, HttpMethod.GET, node.httpPort(), "/v1/orders/t1", null, Map.of()))
          .as("plain http to the TLS port").isNotNull();
      JsonNode cluster = TestNodes.call(https, HttpMethod.GET, node.httpPort(), "/v1/_cluster", null, Map.of()).body();
      assertThat(cluster.path("nodes").path(cluster.path("node").asText()).path("url").asText())
          .isEqualTo("https://127.0.0.1:" + node.httpPort());

      // A renewed certificate, another key: written in place, as a certificate manager does.
      TestCa.Issued renewed = pki.ca.issue("kfold-renewed");
      renewed.writeTo(pki.certificate, pki.key);
      Await.until("a new connection gets the renewed certificate", () -> served(vertx, pki, node, "/health").serial()
          .equals(renewed.serial()));
      assertThat(served(vertx, pki, node, "/health").version()).isEqualTo(HttpVersion.HTTP_2);
      assertThat(metric(https, node, "kfold_http_tls_reloads_total")).isEqualTo(1);

      // A certificate whose key is cut short, as while it is being written: the server keeps the renewed one.
      TestCa.Issued third = pki.ca.issue("kfold-third");
      keepsRenewed(vertx, pki, https, node, renewed, () -> {
        Files.writeString(pki.certificate, third.certificatePem());
        Files.writeString(pki.key, third.keyPem().substring(0, third.keyPem().length() / 2));
      });
      // A whole key, but of another certificate: taking it would fail every handshake.
      keepsRenewed(vertx, pki, https, node, renewed, () -> Files.writeString(pki.key, pki.ca.issue("kfold-fourth").keyPem()));
      assertThat(metric(https, node, "kfold_http_tls_reloads_total")).isEqualTo(1);
    } finally {
      https.close();
      plain.close();
      h2Client.close();
      node.stop().await(60, TimeUnit.SECONDS);
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  private interface Change {
    void apply() throws Exception;
  }

  /** Once the node has checked the files that {@code change} writes and refused them, it still serves {@code renewed}. */
  private static void keepsRenewed(Vertx vertx, Pki pki, WebClient https, NodeRuntime node, TestCa.Issued renewed,
                                   Change change) throws Exception {
    long failures = metric(https, node, "kfold_http_tls_reload_failures_total");
    change.apply();
    Await.until("the node refused the files", () -> metric(https, node, "kfold_http_tls_reload_failures_total") > failures);
    Served served = served(vertx, pki, node, "/health");
    assertThat(served.serial()).as("the certificate served after a refused reload").isEqualTo(renewed.serial());
    assertThat(served.status()).isEqualTo(200);
  }

  @Test
  @DisplayName("with two nodes on https, a command and a read for an entity the other node folds are forwarded to it"
      + " over https, its certificate verified against http.tls.trust, and answered by it")
  void forwardsOverHttps() throws Exception {
    Pki pki = Pki.create("tls-two");
    pki.ca.issue("kfold-node").writeTo(pki.certificate, pki.key);
    String app = TestNodes.newApp("tls-two");
    // Quick rebalances: the two starts come apart anyway, and the later join is taken up within a second.
    NodeConfig first = NodeConfig.load(TestNodes.quickRebalances(pki.env(app, "tls-two-a")));
    NodeConfig second = NodeConfig.load(TestNodes.quickRebalances(pki.env(app, "tls-two-b")));
    Vertx vertx = Vertx.vertx();
    // Started together, the two join the group in one rebalance rather than two.
    Future<NodeRuntime> startA = NodeRuntime.start(vertx, first);
    Future<NodeRuntime> startB = NodeRuntime.start(vertx, second);
    NodeRuntime a = startA.await(60, TimeUnit.SECONDS);
    NodeRuntime b = startB.await(60, TimeUnit.SECONDS);
    WebClient https = WebClient.create(vertx, new WebClientOptions().setSsl(true)
        .setTrustOptions(new PemTrustOptions().addCertPath(pki.trust.toString())));
    try {
      Await.until("two nodes share the partitions and know each other's https URLs", () -> splitAndKnown(https, a, b));
      String nameOfB = TestNodes.call(https, HttpMethod.GET, b.httpPort(), "/v1/_cluster", null, Map.of()).body()
          .path("node").asText();
      Ownership ofB = new Ownership(second, Map.of("orders", 4), b.progress());
      String order = IntStream.range(0, 100).mapToObj(i -> "f" + i).filter(o -> ofB.owns("orders", o))
          .findFirst().orElseThrow();

      Reply placed = TestNodes.call(https, HttpMethod.POST, a.httpPort(), "/v1/orders/" + order + "/commands", PLACE,
          Map.of());
      assertThat(placed.status()).as("place through A: %s", placed.body()).isEqualTo(200);
      assertThat(placed.header("Kfold-Node")).as("the node that decided").isEqualTo(nameOfB);
      Reply read = TestNodes.call(https, HttpMethod.GET, a.httpPort(), "/v1/orders/" + order, null, Map.of());
      assertThat(read.status()).isEqualTo(200);
      assertThat(read.header("Kfold-Node")).as("the node that answered the read").isEqualTo(nameOfB);
      assertThat(read.body().path("version").asLong()).isEqualTo(1);
      assertThat(metric(https, a, "kfold_http_forwarded_total")).isEqualTo(2);
      assertThat(TestLog.events(first.eventsTopic("orders"), order)).hasSize(1);
    } finally {
      https.close();
      a.stop().await(60, TimeUnit.SECONDS);
      b.stop().await(60, TimeUnit.SECONDS);
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  @Test
  @DisplayName("the start stops, naming the file and why, when the key file is missing, when the key is not the"
      + " certificate's, when the trust file is missing, and when only one of certificate and key is set")
  void refusesMissingOrMismatchedFiles() throws Exception {
    Pki pki = Pki.create("tls-bad");
    TestCa.Issued issued = pki.ca.issue("kfold-bad");
    Files.writeString(pki.certificate, issued.certificatePem());
    String app = TestNodes.newApp("tls-bad");
    Vertx vertx = Vertx.vertx();
    try {
      assertThat(startFailure(vertx, pki.env(app, "tls-bad")))
          .contains("'http.tls.key'", pki.key.toString(), "does not exist");

      Files.writeString(pki.key, pki.ca.issue("kfold-other").keyPem());
      assertThat(startFailure(vertx, pki.env(app, "tls-bad")))
          .contains("'http.tls.key'", pki.key.toString(), "is not the private key of the certificate in "
              + pki.certificate);

      Files.writeString(pki.key, issued.keyPem());
      Map<String, String> noTrust = pki.env(app, "tls-bad");
      noTrust.put("KFOLD_HTTP_TLS_TRUST", pki.dir.resolve("missing-ca.pem").toString());
      assertThat(startFailure(vertx, noTrust)).contains("'http.tls.trust'", "missing-ca.pem", "does not exist");

      Map<String, String> onlyCertificate = pki.env(app, "tls-bad");
      onlyCertificate.remove("KFOLD_HTTP_TLS_KEY");
      assertThatThrownBy(() -> NodeConfig.load(onlyCertificate))
          .hasMessageContaining("'http.tls'").hasMessageContaining("'key' is empty");
    } finally {
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  private static String startFailure(Vertx vertx, Map<String, String> env) throws Exception {
    NodeConfig config = NodeConfig.load(env);
    Throwable failure = NodeRuntime.start(vertx, config).transform(done -> Future.succeededFuture(
        done.cause())).await(60, TimeUnit.SECONDS);
    assertThat(failure).as("the start's failure").isNotNull();
    return failure.getMessage();
  }

  /** What one new connection, offering HTTP/2 and HTTP/1.1, got: the version, the status and the certificate's serial. */
  private record Served(HttpVersion version, int status, BigInteger serial) {}

  private static Served served(Vertx vertx, Pki pki, NodeRuntime node, String path) throws Exception {
    HttpClient client = vertx.createHttpClient(h2Options(pki));  // a client of its own: a new connection
    try {
      HttpClientResponse response = client.request(HttpMethod.GET, node.httpPort(), "127.0.0.1", path)
          .compose(request -> request.send()).await(30, TimeUnit.SECONDS);
      X509Certificate certificate = (X509Certificate) response.request().connection().peerCertificates().get(0);
      return new Served(response.version(), response.statusCode(), certificate.getSerialNumber());
    } finally {
      client.close().await(10, TimeUnit.SECONDS);
    }
  }

  /** A client that offers HTTP/2 by ALPN and trusts the test's CA. */
  private static HttpClientOptions h2Options(Pki pki) {
    return new HttpClientOptions().setSsl(true).setUseAlpn(true).setProtocolVersion(HttpVersion.HTTP_2)
        .setVerifyHost(true).setTrustOptions(new PemTrustOptions().addCertPath(pki.trust.toString()));
  }

  /** Both nodes share the partitions and know each other, by https URLs only. */
  private static boolean splitAndKnown(WebClient client, NodeRuntime a, NodeRuntime b) throws Exception {
    return TestNodes.splitAndKnown(a, b, node -> {
      JsonNode cluster = TestNodes.call(client, HttpMethod.GET, node.httpPort(), "/v1/_cluster", null, Map.of()).body();
      ArrayNode overHttps = JsonNodeFactory.instance.arrayNode();
      cluster.path("nodes").forEach(n -> {
        if (n.path("url").asText().startsWith("https://")) {
          overHttps.add(n);
        }
      });
      return JsonNodeFactory.instance.objectNode().set("nodes", overHttps);
    });
  }

  /** A metric of the node's {@code /metrics} without labels. */
  private static long metric(WebClient client, NodeRuntime node, String name) throws Exception {
    String text = client.get(node.httpPort(), "127.0.0.1", "/metrics").send().await(10, TimeUnit.SECONDS).bodyAsString();
    return text.lines().filter(line -> line.startsWith(name + " ")).mapToLong(line -> (long) Double.parseDouble(line.split(" ")[1]))
        .findFirst().orElseThrow(() -> new AssertionError("no metric " + name + " in " + text));
  }

}
