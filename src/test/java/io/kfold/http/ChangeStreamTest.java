package io.kfold.http;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.config.NodeConfig;
import io.kfold.RunningNode;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.kfold.types.Envelopes;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.stream.LongStream;

import static org.assertj.core.api.Assertions.assertThat;

/** The change stream under a client that reads slowly, and a client that reconnects. */
@ExtendWith(TestBroker.class)
class ChangeStreamTest {

  /** The most bytes the node may hold for one stream in this test: small, so a few appends exceed it. */
  private static final int BOUND = 64 * 1024;

  private static RunningNode running;

  @BeforeAll
  static void start() throws Exception {
    Map<String, String> env = TestNodes.env(TestNodes.newApp("sse"), TestNodes.tempDir("sse"));
    env.put("KFOLD_HTTP_STREAM_MAX_PENDING_BYTES", Integer.toString(BOUND));
    running = RunningNode.start(NodeConfig.load(env));
  }

  @AfterAll
  static void stop() throws Exception {
    running.close();
  }

  @Test
  @DisplayName("a client that stops reading is cut off by the node, which never held more than the bound for it, and resumes with Last-Event-ID")
  void slowClientIsCutOff() throws Exception {
    append("slow", 1, 1, 100);
    try (Socket socket = new Socket()) {
      // A small receive window, and no reads: what the node sends piles up on the node's side.
      socket.setReceiveBufferSize(4096);
      socket.connect(new InetSocketAddress("127.0.0.1", running.node().httpPort()), 5000);
      socket.getOutputStream().write(("GET /v1/users/slow/changes HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
          .getBytes(StandardCharsets.ISO_8859_1));
      socket.setSoTimeout(10_000);
      InputStream in = socket.getInputStream();
      StringBuilder head = new StringBuilder();
      while (head.indexOf("\r\n\r\n") < 0) {
        int b = in.read();
        assertThat(b).as("the response head").isNotNegative();
        head.append((char) b);
      }
      assertThat(head.toString()).startsWith("HTTP/1.1 200").contains("text/event-stream");

      // Each change is about 16 KB (an 8 KB event and the state holding it); the socket buffers take
      // a few MB before the node has to hold anything.
      long version = 1;
      int appends = 0;
      while (metric("kfold_http_change_streams_cut_total") < 1) {
        assertThat(appends).as("the node cut the stream of a client that stopped reading, within %d changes", version)
            .isLessThan(80);
        append("slow", version + 1, 20, 8 * 1024);
        version += 20;
        appends++;
      }
      assertThat(metric("kfold_http_change_stream_pending_bytes_max")).as("the most the node held for one stream")
          .isPositive().isLessThanOrEqualTo(BOUND);

      // Reading again, the client gets what was on its way, then the end: the node closed the connection.
      String rest = readToEnd(in);
      List<String> frames = frames(rest.substring(rest.indexOf("event:")));
      long lastSeen = id(frames.get(frames.size() - 1));
      assertThat(lastSeen).as("the stream ended before the last change").isLessThan(version);

      long deadline = System.currentTimeMillis() + 10_000;
      while (metric("kfold_http_change_stream_pending_bytes") != 0) {
        assertThat(System.currentTimeMillis()).as("the node lets go of what it held for the closed stream")
            .isLessThan(deadline);
        Thread.sleep(50);
      }

      // It reconnects with the last id it got, and receives every change after it, in order.
      List<String> resumed = stream("slow", lastSeen, version);
      assertThat(resumed).extracting(ChangeStreamTest::id)
          .containsExactlyElementsOf(LongStream.rangeClosed(lastSeen + 1, version).boxed().toList());
      assertThat(data(resumed.get(resumed.size() - 1)).path("state").path("n").asLong()).isEqualTo(version);
    }
  }

  @Test
  @DisplayName("a client reconnecting with Last-Event-ID: N gets exactly the changes after N, written while it was away and meanwhile, then live ones")
  void reconnectResumesAfterLastEventId() throws Exception {
    append("resume", 1, 3, 10);
    List<String> first = stream("resume", -1, 3);
    assertThat(first).hasSize(1);
    assertThat(first.get(0)).startsWith("event: state\nid: 3\n");

    append("resume", 4, 3, 10);  // while the client is away

    List<String> frames = new CopyOnWriteArrayList<>();
    HttpClient http = running.vertx.createHttpClient();
    try {
      HttpClientResponse response = open(http, "resume", 3, frames);
      assertThat(response.statusCode()).isEqualTo(200);
      append("resume", 7, 3, 10);  // while it catches up, and after
      awaitId(frames, 9);
      Thread.sleep(200);  // a duplicate would come right behind
      assertThat(frames).extracting(ChangeStreamTest::id).containsExactly(4L, 5L, 6L, 7L, 8L, 9L);
      for (String frame : frames) {
        assertThat(frame).startsWith("event: change\n");
        JsonNode change = data(frame);
        long version = id(frame);
        assertThat(change.path("id").asText()).isEqualTo("resume:" + version);
        assertThat(change.path("event").path("version").asLong()).isEqualTo(version);
        assertThat(change.path("event").path("payload").path("n").asLong()).isEqualTo(version);
        if (change.has("state")) {
          assertThat(change.path("state").path("n").asLong()).as("the state after the change").isEqualTo(version);
        }
      }
      assertThat(data(frames.get(frames.size() - 1)).path("state").path("n").asLong()).isEqualTo(9);
    } finally {
      http.close().await(10, TimeUnit.SECONDS);
    }

    // Nothing missed: nothing replayed, the next change is the first frame.
    List<String> upToDate = new CopyOnWriteArrayList<>();
    HttpClient again = running.vertx.createHttpClient();
    try {
      open(again, "resume", 9, upToDate);
      append("resume", 10, 1, 10);
      awaitId(upToDate, 10);
      assertThat(upToDate).extracting(ChangeStreamTest::id).containsExactly(10L);
    } finally {
      again.close().await(10, TimeUnit.SECONDS);
    }

    Reply bad = running.call(HttpMethod.GET, "/v1/users/resume/changes", null, Map.of("Last-Event-ID", "yesterday"));
    assertThat(bad.status()).isEqualTo(400);
    assertThat(bad.contentType()).isEqualTo("application/problem+json");
    assertThat(bad.body().path("detail").asText()).contains("Last-Event-ID");
  }

  /** Appends {@code count} events to a user from version {@code from}, each {@code {"n": version, "blob": …}}. */
  private static void append(String user, long from, int count, int blobBytes) throws Exception {
    StringBuilder body = new StringBuilder("{\"events\":[");
    for (int i = 0; i < count; i++) {
      body.append(i == 0 ? "" : ",").append("{\"type\":\"Changed\",\"payload\":{\"n\":").append(from + i)
          .append(",\"blob\":\"").append("x".repeat(blobBytes)).append("\"}}");
    }
    Reply reply = running.call(HttpMethod.POST, "/v1/users/" + user + "/events", body.append("]}").toString(),
        Map.of("If-Match", "\"" + (from - 1) + "\""));
    assertThat(reply.status()).as("append at %d: %s", from, reply.body()).isEqualTo(200);
  }

  /** Opens the stream (with Last-Event-ID unless it is negative) and reads it until the frame of {@code until}. */
  private static List<String> stream(String user, long lastEventId, long until) throws Exception {
    List<String> frames = new CopyOnWriteArrayList<>();
    HttpClient http = running.vertx.createHttpClient();
    try {
      open(http, user, lastEventId, frames);
      awaitId(frames, until);
      return new ArrayList<>(frames);
    } finally {
      http.close().await(10, TimeUnit.SECONDS);
    }
  }

  private static HttpClientResponse open(HttpClient http, String user, long lastEventId, List<String> frames)
      throws Exception {
    RequestOptions options = new RequestOptions().setMethod(HttpMethod.GET).setPort(running.node().httpPort())
        .setHost("127.0.0.1").setURI("/v1/users/" + user + "/changes");
    if (lastEventId >= 0) {
      options.putHeader("Last-Event-ID", Long.toString(lastEventId));
    }
    return TestNodes.openStream(http, options, frames).await(10, TimeUnit.SECONDS);
  }

  private static void awaitId(List<String> frames, long id) throws InterruptedException {
    long deadline = System.currentTimeMillis() + 20_000;
    while (frames.stream().noneMatch(f -> id(f) == id)) {
      assertThat(System.currentTimeMillis()).as("frame %d arrives; got %s", id,
          frames.stream().map(ChangeStreamTest::id).toList()).isLessThan(deadline);
      Thread.sleep(20);
    }
  }

  /** Reads until the server closes the connection; a reset counts as closed too. */
  private static String readToEnd(InputStream in) throws IOException {
    StringBuilder text = new StringBuilder();
    byte[] buffer = new byte[64 * 1024];
    try {
      for (int n; (n = in.read(buffer)) >= 0; ) {
        text.append(new String(buffer, 0, n, StandardCharsets.ISO_8859_1));
      }
    } catch (SocketTimeoutException e) {
      throw new AssertionError("the node did not close the stream; " + text.length() + " bytes read", e);
    } catch (IOException reset) {
      // closed by the node without a goodbye: what was read is what arrived
    }
    return text.toString();
  }

  /** The complete SSE frames (not comments) of a chunked body read raw: chunk-size lines dropped, a cut-off frame too. */
  private static List<String> frames(String raw) {
    String body = raw.replaceAll("\r\n[0-9a-f]+\r\n", "");
    List<String> frames = new ArrayList<>();
    for (String frame : body.substring(0, Math.max(0, body.lastIndexOf("\n\n"))).split("\n\n")) {
      if (frame.startsWith("event:")) {
        frames.add(frame);
      }
    }
    return frames;
  }

  private static long id(String frame) {
    for (String line : frame.split("\n")) {
      if (line.startsWith("id: ")) {
        return Long.parseLong(line.substring(4).trim());
      }
    }
    return -1;
  }

  private static JsonNode data(String frame) {
    try {
      return Envelopes.parse(frame.substring(frame.indexOf("\ndata: ") + 7).trim().getBytes(StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** A value of the node's /metrics, or -1 when it has none. */
  private static long metric(String name) throws Exception {
    String text = running.client.get(running.node().httpPort(), "127.0.0.1", "/metrics").send()
        .await(10, TimeUnit.SECONDS).bodyAsString();
    for (String line : text.split("\n")) {
      if (line.startsWith(name + " ")) {
        return (long) Double.parseDouble(line.substring(name.length() + 1).trim());
      }
    }
    return -1;
  }
}
