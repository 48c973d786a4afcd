package io.kfold;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.entity.Command;
import io.kfold.entity.CommandRejectedException;
import io.kfold.entity.EntityType;
import io.kfold.entity.Envelope;
import io.kfold.entity.KfoldException;
import io.kfold.entity.NewEvent;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.eventbus.ReplyFailure;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * kfold as a library: an application's own Vert.x, its configuration as YAML in code, its entity type
 * given in code, used over the event bus and HTTP, then stopped while the application goes on.
 */
@ExtendWith(TestBroker.class)
class EmbeddingTest {

  /** The application's type, written in Java and given in code: no configuration entry names it. */
  static final class Tickets implements EntityType {
    @Override
    public String name() {
      return "tickets";
    }

    @Override
    public JsonNode initialState() {
      return JsonNodeFactory.instance.objectNode();
    }

    @Override
    public JsonNode apply(JsonNode state, Envelope event) {
      ObjectNode next = ((ObjectNode) state).deepCopy();
      return switch (event.type()) {
        case "Opened" -> next.put("status", "open").put("title", event.payload().path("title").asText());
        case "Closed" -> next.put("status", "closed");
        default -> throw new IllegalArgumentException("unknown event " + event.type());
      };
    }

    @Override
    public List<NewEvent> decide(JsonNode state, long version, Command command) {
      return switch (command.type()) {
        case "open" -> List.of(new NewEvent("Opened", command.payload()));
        case "close" -> {
          if (state.path("status").asText().equals("closed")) {
            throw new CommandRejectedException("the ticket is closed already");
          }
          yield List.of(new NewEvent("Closed", JsonNodeFactory.instance.objectNode()));
        }
        default -> throw KfoldException.badRequest("unknown command " + command.type());
      };
    }
  }

  /** Another type named "tickets": two folds of one topic would disagree. */
  static final class OtherTickets implements EntityType {
    @Override
    public String name() {
      return "tickets";
    }

    @Override
    public JsonNode initialState() {
      return JsonNodeFactory.instance.objectNode();
    }

    @Override
    public JsonNode apply(JsonNode state, Envelope event) {
      return event.payload();
    }
  }

  /**
   * A type the YAML names by {@code class:}, which kfold creates when it starts. Creating such a class
   * may read plugin jars and run the class's own code: never on an event loop.
   */
  public static final class Notes implements EntityType {
    public Notes() {
      if (Context.isOnEventLoopThread()) {
        throw new IllegalStateException("created on an event loop thread");
      }
    }

    @Override
    public String name() {
      return "notes";
    }

    @Override
    public JsonNode initialState() {
      return JsonNodeFactory.instance.objectNode();
    }

    @Override
    public JsonNode apply(JsonNode state, Envelope event) {
      return event.payload();
    }
  }

  /** The application's verticle: it starts kfold in its own start, as an application would, on its event loop. */
  static final class Application extends VerticleBase {
    private final KfoldConfig config;
    volatile KfoldNode node;

    Application(KfoldConfig config) {
      this.config = config;
    }

    @Override
    public Future<?> start() {
      return KfoldNode.start(vertx, config, KfoldNode.Options.DEFAULTS.withType(new Tickets()))
          .onSuccess(started -> node = started);
    }
  }

  @Test
  @DisplayName("an application starts kfold in its own Vert.x with a type given in code, commands it over the event bus"
      + " and HTTP, reads a configured view of that type, and keeps its Vert.x after the node stops")
  void embedded() throws Exception {
    // Only the types named here: 'types' replaces the defaults' types, views and workers, as in a KFOLD_CONFIG file.
    KfoldConfig config = KfoldConfig.fromYaml("""
        app: %s
        dataDir: %s
        http:
          port: 0
        kafka:
          bootstrap: %s
          partitions: 2
        types:
          - name: notes
            class: io.kfold.EmbeddingTest$Notes
        views:
          - name: tickets-by-status
            from: [tickets]
            key: /status
            fields:
              tickets: count
        """.formatted(TestNodes.newApp("embed"), TestNodes.tempDir("embed"), TestBroker.bootstrap()));
    Vertx vertx = Vertx.vertx();
    try {
      Application application = new Application(config);
      vertx.deployVerticle(application).await(60, TimeUnit.SECONDS);
      KfoldNode node = application.node;
      WebClient http = WebClient.create(vertx);
      Await.until("the node has folded its partitions", () -> http.get(node.httpPort(), "127.0.0.1", "/ready")
          .send().await(10, TimeUnit.SECONDS).statusCode() == 200);

      JsonObject opened = vertx.eventBus().<JsonObject>request("kfold.tickets.command", new JsonObject().put("key", "t-1")
          .put("type", "open").put("payload", new JsonObject().put("title", "printer"))).await(30, TimeUnit.SECONDS).body();
      assertThat(opened.getLong("version")).isEqualTo(1L);

      HttpResponse<Buffer> closed = command(http, node, "t-1", "{\"type\": \"close\"}");
      assertThat(closed.statusCode()).as(closed.bodyAsString()).isEqualTo(200);
      assertThat(closed.bodyAsJsonObject().getLong("version")).isEqualTo(2L);
      HttpResponse<Buffer> again = command(http, node, "t-1", "{\"type\": \"close\"}");
      assertThat(again.statusCode()).as("the type's own rule, over HTTP").isEqualTo(422);
      assertThat(again.bodyAsString()).contains("the ticket is closed already");
      HttpResponse<Buffer> second = command(http, node, "t-2", "{\"type\": \"open\", \"payload\": {\"title\": \"desk\"}}");
      assertThat(second.statusCode()).as(second.bodyAsString()).isEqualTo(200);

      JsonObject read = vertx.eventBus().<JsonObject>request("kfold.tickets.get", new JsonObject().put("key", "t-1"))
          .await(30, TimeUnit.SECONDS).body();
      assertThat(read.getJsonObject("state").getString("status")).isEqualTo("closed");
      assertThat(read.getJsonObject("state").getString("title")).isEqualTo("printer");

      // The view over the code-given type: each row read once it holds the write that last changed it.
      assertThat(row(http, node, "closed", closed)).isEqualTo(1);
      assertThat(row(http, node, "open", second)).isEqualTo(1);

      // The type the YAML names by class was created (off the event loop) and is served too.
      JsonObject note = vertx.eventBus().<JsonObject>request("kfold.notes.command", new JsonObject().put("key", "n-1")
          .put("type", "Written").put("payload", new JsonObject().put("text", "hi"))).await(30, TimeUnit.SECONDS).body();
      assertThat(note.getLong("version")).isEqualTo(1L);

      node.stop().await(60, TimeUnit.SECONDS);
      // The application's Vert.x is still its own: kfold's addresses are gone, its own work goes on.
      ReplyException gone = (ReplyException) vertx.eventBus().request("kfold.tickets.get", new JsonObject().put("key", "t-1"))
          .transform(ar -> Future.succeededFuture(ar.cause())).await(10, TimeUnit.SECONDS);
      assertThat(gone.failureType()).isEqualTo(ReplyFailure.NO_HANDLERS);
      vertx.eventBus().<String>consumer("app.ping", message -> message.reply("pong"));
      assertThat(vertx.eventBus().<String>request("app.ping", "ping").await(10, TimeUnit.SECONDS).body()).isEqualTo("pong");
      assertThat(vertx.deployVerticle(new VerticleBase() { }).await(10, TimeUnit.SECONDS)).isNotBlank();
    } finally {
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  @Test
  @DisplayName("two types with one name fail the start, naming both; a YAML may leave every type to code; an unknown key fails it")
  void badTypesAndKeys() throws Exception {
    KfoldConfig config = KfoldConfig.fromYaml("""
        app: %s
        dataDir: %s
        kafka:
          bootstrap: %s
        """.formatted(TestNodes.newApp("embed-bad"), TestNodes.tempDir("embed-bad"), TestBroker.bootstrap()));
    Vertx vertx = Vertx.vertx();
    try {
      Throwable failure = KfoldNode.start(vertx, config,
              KfoldNode.Options.DEFAULTS.withType(new Tickets()).withType(new OtherTickets()))
          .transform(ar -> Future.succeededFuture(ar.cause())).await(30, TimeUnit.SECONDS);
      assertThat(failure).isInstanceOf(IllegalArgumentException.class);
      assertThat(failure.getMessage()).contains("'tickets' is declared twice",
          Tickets.class.getName(), OtherTickets.class.getName());
    } finally {
      vertx.close().await(30, TimeUnit.SECONDS);
    }
    assertThat(KfoldConfig.fromYaml("app: all-in-code\ntypes: []\n").app()).as("every type may come from code")
        .isEqualTo("all-in-code");
    assertThatThrownBy(() -> KfoldConfig.fromYaml("htp:\n  port: 8080\n"))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("unknown key 'htp'");
  }

  /** How many tickets count in the view's row {@code status}, once it holds {@code write}. */
  private static int row(WebClient http, KfoldNode node, String status, HttpResponse<Buffer> write) throws Exception {
    HttpResponse<Buffer> row = http.get(node.httpPort(), "127.0.0.1", "/v1/_views/tickets-by-status/" + status)
        .addQueryParam("minPosition", write.bodyAsJsonObject().getString("position"))
        .addQueryParam("timeoutMs", "30000").send().await(40, TimeUnit.SECONDS);
    assertThat(row.statusCode()).as(status + ": " + row.bodyAsString()).isEqualTo(200);
    return row.bodyAsJsonObject().getJsonObject("row").getInteger("tickets");
  }

  private static HttpResponse<Buffer> command(WebClient http, KfoldNode node, String id, String body) throws Exception {
    return http.post(node.httpPort(), "127.0.0.1", "/v1/tickets/" + id + "/commands")
        .putHeader("Content-Type", "application/json").sendBuffer(Buffer.buffer(body)).await(30, TimeUnit.SECONDS);
  }

  @Test
  @DisplayName("a node without a Kafka cluster, or with the clustered bus on a Vert.x that is not clustered, fails to"
      + " start saying what to do")
  void startRefusesWhatItCannotServe() throws Exception {
    Vertx vertx = Vertx.vertx();
    try {
      assertThatThrownBy(() -> KfoldNode.start(vertx, KfoldConfig.fromYaml("app: nowhere\n")).await(10, TimeUnit.SECONDS))
          .hasMessageContaining("no 'kafka.bootstrap'").hasMessageContaining("LocalKafka");
      KfoldConfig clustered = KfoldConfig.fromYaml("kafka: {bootstrap: \"127.0.0.1:1\"}\n"
          + "eventBus: {cluster: {enabled: true}}\n");
      assertThatThrownBy(() -> KfoldNode.start(vertx, clustered).await(10, TimeUnit.SECONDS))
          .hasMessageContaining("not clustered").hasMessageContaining("EventBusCluster.join");
    } finally {
      vertx.close().await(10, TimeUnit.SECONDS);
    }
  }
}
