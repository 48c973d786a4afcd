package io.kfold.effects;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.UUID;

import static org.assertj.core.api.Assertions.assertThat;

@ExtendWith(TestOpenSearch.class)
class TestOpenSearchTest {

  private final HttpClient http = HttpClient.newHttpClient();

  @Test
  @DisplayName("the test node indexes with external versions, refuses an older version and finds the document")
  void externalVersionsAndSearch() throws Exception {
    String index = "/orders-" + UUID.randomUUID();
    // One node: a replica could never be assigned and the index would stay yellow.
    assertThat(send("PUT", index, "{\"settings\":{\"number_of_shards\":1,\"number_of_replicas\":0}}").statusCode())
        .isEqualTo(200);

    assertThat(send("PUT", index + "/_doc/order-1?version_type=external&version=5", "{\"status\":\"shipped\"}")
        .statusCode()).isEqualTo(201);
    HttpResponse<String> older = send("PUT", index + "/_doc/order-1?version_type=external&version=3",
        "{\"status\":\"created\"}");
    assertThat(older.statusCode()).isEqualTo(409);
    assertThat(older.body()).contains("version_conflict_engine_exception");

    assertThat(send("POST", index + "/_refresh", "").statusCode()).isEqualTo(200);
    HttpResponse<String> search = send("POST", index + "/_search",
        "{\"version\":true,\"query\":{\"match\":{\"status\":\"shipped\"}}}");
    assertThat(search.statusCode()).isEqualTo(200);
    JsonNode hits = new ObjectMapper().readTree(search.body()).path("hits");
    assertThat(hits.path("total").path("value").asInt()).isEqualTo(1);
    JsonNode hit = hits.path("hits").get(0);
    assertThat(hit.path("_id").asText()).isEqualTo("order-1");
    assertThat(hit.path("_version").asLong()).isEqualTo(5);
    assertThat(hit.path("_source").path("status").asText()).isEqualTo("shipped");
  }

  private HttpResponse<String> send(String method, String path, String json) throws Exception {
    HttpRequest request = HttpRequest.newBuilder(URI.create(TestOpenSearch.url() + path))
        .timeout(Duration.ofSeconds(30))
        .header("Content-Type", "application/json")
        .method(method, HttpRequest.BodyPublishers.ofString(json))
        .build();
    return http.send(request, HttpResponse.BodyHandlers.ofString());
  }
}
