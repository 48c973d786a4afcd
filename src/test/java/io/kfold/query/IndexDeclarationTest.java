package io.kfold.query;

import io.kfold.config.NodeConfig;
import io.kfold.TestNodes;
import io.kfold.entity.Envelope;
import io.kfold.entity.EntityType;
import io.kfold.types.EntityTypes;
import io.kfold.entity.IndexDefinition;
import io.kfold.entity.IndexDefinition.Kind;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Indexes declared in configuration and in Java, and the errors a wrong declaration gets. */
class IndexDeclarationTest {

  @Test
  @DisplayName("the shipped configuration indexes orders by customer and status, and users by email")
  void defaults() {
    EntityTypes types = EntityTypes.from(NodeConfig.load(Map.of()));
    assertThat(types.indexes("orders")).containsExactly(IndexDefinition.of("customer", "/customerEmail"),
        IndexDefinition.of("status", "/status"));
    assertThat(types.indexes("users")).containsExactly(IndexDefinition.of("email", "/email"));
    assertThat(types.indexes("shipments")).isEmpty();
  }

  @Test
  @DisplayName("an index takes a kind, string by default; an unknown key in it names the nearest one")
  void kindsAndUnknownKeys() throws IOException {
    NodeConfig config = load("""
        types:
          - name: users
            fold: merge
            indexes:
              - {name: age, path: /age, kind: number}
              - {name: city, path: /address/city}
        """);
    assertThat(EntityTypes.from(config).indexes("users")).containsExactly(
        new IndexDefinition("age", "/age", Kind.NUMBER), new IndexDefinition("city", "/address/city", Kind.STRING));
    assertThatThrownBy(() -> load("""
        types:
          - name: users
            fold: merge
            indexes:
              - {name: age, pth: /age}
        """)).hasMessageContaining("unknown key 'types[0].indexes[0].pth'")
        .hasMessageContaining("did you mean 'types[0].indexes[0].path'?");
  }

  @Test
  @DisplayName("a duplicate name, a path that is no JSON pointer, an unknown kind or a reserved name is refused, saying where")
  void invalidDeclarations() {
    assertThatThrownBy(() -> load(users("[{name: a, path: /a}, {name: a, path: /b}]")))
        .hasMessageContaining("types.users.indexes[1]").hasMessageContaining("'a' is declared twice");
    assertThatThrownBy(() -> load(users("[{name: a, path: a}]")))
        .hasMessageContaining("types.users.indexes[0]").hasMessageContaining("path 'a' is not a JSON pointer");
    assertThatThrownBy(() -> load(users("[{name: a, path: /a, kind: date}]")))
        .hasMessageContaining("types.users.indexes[0]").hasMessageContaining("index kind 'date' is unknown");
    assertThatThrownBy(() -> load(users("[{name: limit, path: /a}]")))
        .hasMessageContaining("index name 'limit' is invalid");
    assertThatThrownBy(() -> load(users("[{name: a.b, path: /a}]")))
        .hasMessageContaining("index name 'a.b' is invalid");
    assertThatThrownBy(() -> load(users("[{path: /a}]")))
        .hasMessageContaining("index name '' is invalid");
  }

  /** A Java type with an index of its own. */
  public static final class Tagged implements EntityType {
    @Override
    public String name() {
      return "tagged";
    }

    @Override
    public JsonNode initialState() {
      return JsonNodeFactory.instance.objectNode();
    }

    @Override
    public JsonNode apply(JsonNode state, Envelope event) {
      return event.payload();
    }

    @Override
    public List<IndexDefinition> indexes() {
      return List.of(IndexDefinition.of("tag", "/tags"));
    }
  }

  @Test
  @DisplayName("a Java type's indexes come first, the configuration's after; one name in both is refused")
  void javaAndConfiguration() throws IOException {
    String type = """
        types:
          - name: tagged
            class: io.kfold.query.IndexDeclarationTest$Tagged
            indexes: [{name: %s, path: /x}]
        """;
    assertThat(EntityTypes.from(load(type.formatted("x"))).indexes("tagged"))
        .extracting(IndexDefinition::name).containsExactly("tag", "x");
    assertThatThrownBy(() -> EntityTypes.from(load(type.formatted("tag"))))
        .hasMessageContaining("type 'tagged' declares the index 'tag' twice");
  }

  private static String users(String indexes) {
    return "types:\n  - name: users\n    fold: merge\n    indexes: " + indexes + "\n";
  }

  /** The shipped configuration with its types replaced by {@code typesYaml}, and no workers. */
  private static NodeConfig load(String typesYaml) throws IOException {
    String shipped = Files.readString(Path.of("conf", "kfold.yaml"));
    String head = shipped.substring(0, shipped.indexOf("\ntypes:\n") + 1);
    Path file = TestNodes.tempDir("idx").resolve("kfold.yaml");
    Files.writeString(file, head + typesYaml + "effects: {}\n");
    return NodeConfig.load(Map.of("KFOLD_CONFIG", file.toString()));
  }
}
