package io.kfold.command;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.config.NodeConfig;
import io.kfold.RunningNode;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.kfold.entity.Command;
import io.kfold.entity.EntityType;
import io.kfold.entity.Envelope;
import io.kfold.entity.NewEvent;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** A Java type whose {@code decide} fails with a bug, not a rejection: the write fails, the entity goes on. */
@ExtendWith(TestBroker.class)
class FailingDecideTest {

  /** Counts; its {@code decide} has a bug that any "crash" command reaches. */
  public static final class Counters implements EntityType {

    @Override
    public String name() {
      return "counters";
    }

    @Override
    public JsonNode initialState() {
      return JsonNodeFactory.instance.objectNode().put("count", 0);
    }

    @Override
    public JsonNode apply(JsonNode state, Envelope event) {
      return ((ObjectNode) state.deepCopy()).put("count", state.path("count").asLong() + 1);
    }

    @Override
    public List<NewEvent> decide(JsonNode state, long version, Command command) {
      if (command.type().equals("crash")) {
        throw new IllegalStateException("a bug in decide");
      }
      return List.of(new NewEvent("Incremented", JsonNodeFactory.instance.objectNode()));
    }
  }

  @Test
  @DisplayName("a command whose decide throws answers 500 problem+json, and the entity's next command is answered")
  void decideThrows() throws Exception {
    Path dir = TestNodes.tempDir("crash");
    NodeConfig config = NodeConfig.load(TestNodes.withSection(TestNodes.env(TestNodes.newApp("crash"), dir), dir,
        "types", "- name: counters\n  class: " + Counters.class.getName() + "\n- name: orders\n  class: io.kfold.example.Orders\n"
            + "- name: shipments\n  fold: merge\n"));
    try (RunningNode running = RunningNode.start(config)) {
      Reply crashed = running.post("/v1/counters/c-1/commands", "{\"type\":\"crash\"}");
      assertThat(crashed.status()).isEqualTo(500);
      assertThat(crashed.contentType()).isEqualTo("application/problem+json");

      Reply counted = running.post("/v1/counters/c-1/commands", "{\"type\":\"increment\"}");
      assertThat(counted.status()).isEqualTo(200);
      assertThat(counted.body().path("version").asLong()).isEqualTo(1);
      Reply again = running.post("/v1/counters/c-1/commands", "{\"type\":\"crash\"}");
      assertThat(again.status()).isEqualTo(500);
      assertThat(running.get("/v1/counters/c-1?minVersion=1&timeoutMs=5000").body().path("state").path("count").asLong())
          .isEqualTo(1);
    }
  }
}
