package io.kfold.fold;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.config.NodeConfig;
import io.kfold.TestNodes;
import io.kfold.types.EntityTypes;
import io.kfold.types.Envelopes;
import io.kfold.fold.FoldWatch.Verdict;
import io.kfold.store.ChangelogItem;
import io.kfold.store.RocksEntityStore;
import io.kfold.store.StoreBatch;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/** The fold's version rules on one poll, against a real RocksDB store; no broker needed. */
class FoldVersionRulesTest {

  private NodeConfig config;
  private RocksEntityStore store;
  private Fold fold;
  private TopicPartition partition;
  private long offset;

  @BeforeEach
  void setUp() {
    Path dir = TestNodes.tempDir("rules");
    config = NodeConfig.load(Map.of("KFOLD_APP", "rules", "KFOLD_DATA_DIR", dir.toString(),
        "KFOLD_KAFKA_BOOTSTRAP", "127.0.0.1:1"));
    store = new RocksEntityStore(dir.resolve("store"));
    fold = new Fold(config, EntityTypes.from(config), store, new FoldProgress());
    partition = new TopicPartition(config.eventsTopic("users"), 0);
  }

  @AfterEach
  void tearDown() {
    store.close();
  }

  @Test
  @DisplayName("two commands race for the same versions: the first to land wins whole, the other loses whole")
  void racingCommandsResolveWhole() {
    List<Fold.Report> reports = foldPoll(
        event("a1", 1, "A", 0, "{\"by\":\"A\",\"a\":1}"),
        event("b1", 1, "B", 0, "{\"by\":\"B\",\"b\":1}"),
        event("b2", 2, "B", 1, "{\"b\":2}"),
        event("a2", 2, "A", 1, "{\"a\":2}"));
    assertThat(verdicts(reports)).containsExactly(Verdict.APPLIED, Verdict.DUPLICATE, Verdict.CONFLICT, Verdict.APPLIED);
    assertThat(state("k").toString()).isEqualTo("{\"by\":\"A\",\"a\":2}");
    assertThat(store.get("users", "k").version()).isEqualTo(2);
  }

  @Test
  @DisplayName("the winner is decided by the log, the same way in every poll split")
  void raceAcrossPolls() {
    foldPoll(event("b1", 1, "B", 0, "{\"by\":\"B\"}"));
    List<Fold.Report> reports = foldPoll(
        event("a1", 1, "A", 0, "{\"by\":\"A\"}"),
        event("a2", 2, "A", 1, "{\"a\":2}"),
        event("b2", 2, "B", 1, "{\"b\":2}"));
    assertThat(verdicts(reports)).containsExactly(Verdict.DUPLICATE, Verdict.CONFLICT, Verdict.APPLIED);
    assertThat(state("k").toString()).isEqualTo("{\"by\":\"B\",\"b\":2}");
  }

  @Test
  @DisplayName("duplicates are skipped, gaps are rejected, events without a version take the next one")
  void versionRules() {
    List<Fold.Report> reports = foldPoll(
        event("e1", 1, null, 0, "{\"x\":1}"),
        event("e1-again", 1, null, 0, "{\"x\":99}"),
        event("e3", 3, null, 0, "{\"x\":3}"),
        bare("{\"x\":2}"),
        event("e3-now", 3, null, 0, "{\"y\":3}"));
    assertThat(verdicts(reports)).containsExactly(Verdict.APPLIED, Verdict.DUPLICATE, Verdict.CONFLICT,
        Verdict.APPLIED, Verdict.APPLIED);
    assertThat(store.get("users", "k").version()).isEqualTo(3);
    assertThat(state("k").toString()).isEqualTo("{\"x\":2,\"y\":3}");
    assertThat(store.history("users", "k", 1, 10)).hasSize(3);
  }

  @Test
  @DisplayName("the next offset of each partition is written with the states it folded")
  void offsetsTravelWithStates() {
    foldPoll(event("e1", 1, null, 0, "{}"), bare("{}"));
    assertThat(store.nextOffset(partition.topic(), 0)).hasValue(2);
    assertThat(store.outbox(partition.topic(), 0)).hasSize(2);
  }

  @Test
  @DisplayName("a change kept as a reference in the outbox is rebuilt byte for byte as first published")
  void changesRebuiltFromHistory() {
    List<Fold.Report> first = foldPoll(bare("{\"a\":1}"), bare("{\"b\":2}"));
    List<Fold.Report> second = foldPoll(bare("{\"a\":null,\"c\":3}"));
    List<Fold.Report> all = new ArrayList<>(first);
    all.addAll(second);
    for (Fold.Report report : all) {
      var rebuilt = fold.rebuildChange(new OutboxRecord.ChangeReference("users", "k", report.version()), 0, 7);
      assertThat(new String(rebuilt.value(), StandardCharsets.UTF_8)).as("change of version %d", report.version())
          .isEqualTo(new String(report.change(), StandardCharsets.UTF_8));
      assertThat(rebuilt.topic()).isEqualTo(config.changesTopic("users"));
      assertThat(new String(rebuilt.headers().lastHeader("kfold.source.offset").value(), StandardCharsets.UTF_8)).isEqualTo("7");
    }
    assertThat(OutboxRecord.decode(store.outbox(partition.topic(), 0).get(0)))
        .isEqualTo(new OutboxRecord.ChangeReference("users", "k", 1));
  }

  @Test
  @DisplayName("a store restored from a changelog that holds items past its last marker folds the overlap once")
  void restoreOverlapIsHarmless() {
    List<ChangelogItem> changelog = new ArrayList<>(foldPollFully(fold, store, bare("{\"a\":1}"), bare("{\"b\":1}"))
        .changelog().get(partition));
    List<ChangelogItem> second = foldPollFully(fold, store, bare("{\"a\":2}"), event("e4", 4, null, 0, "{\"c\":4}"))
        .changelog().get(partition);
    // The second batch's items reached the changelog, its marker did not.
    assertThat(second.get(second.size() - 1).markedOffset()).isEqualTo(4);
    changelog.addAll(second.subList(0, second.size() - 1));

    Path dir = TestNodes.tempDir("restored");
    try (RocksEntityStore restored = new RocksEntityStore(dir.resolve("store"))) {
      StoreBatch items = new StoreBatch();
      changelog.forEach(items::putChangelogItem);
      restored.write(items);
      assertThat(restored.nextOffset(partition.topic(), 0)).hasValue(2);
      Fold next = new Fold(config, EntityTypes.from(config), restored, new FoldProgress());
      offset = 2;
      List<Fold.Report> reports = foldPollFully(next, restored, bare("{\"a\":2}"), event("e4", 4, null, 0, "{\"c\":4}"),
          bare("{\"d\":5}")).reports();
      assertThat(verdicts(reports)).containsExactly(Verdict.DUPLICATE, Verdict.DUPLICATE, Verdict.APPLIED);
      offset = 4;
      foldPoll(bare("{\"d\":5}"));
      assertThat(restored.get("users", "k").version()).isEqualTo(5);
      assertThat(new String(restored.get("users", "k").state(), StandardCharsets.UTF_8))
          .isEqualTo(new String(store.get("users", "k").state(), StandardCharsets.UTF_8));
      List<String> history = restored.history("users", "k", 1, 10).stream().map(b -> new String(b, StandardCharsets.UTF_8)).toList();
      assertThat(history).isEqualTo(store.history("users", "k", 1, 10).stream()
          .map(b -> new String(b, StandardCharsets.UTF_8)).toList());
    }
  }

  private List<Fold.Report> foldPoll(ConsumerRecord<byte[], byte[]>... records) {
    return foldPollFully(fold, store, records).reports();
  }

  private Fold.Result foldPollFully(Fold fold, RocksEntityStore store, ConsumerRecord<byte[], byte[]>... records) {
    ConsumerRecords<byte[], byte[]> poll = new ConsumerRecords<>(Map.of(partition, List.of(records)), Map.of());
    StoreBatch batch = new StoreBatch();
    Fold.Result result = fold.fold(poll, batch);
    store.write(batch);
    return result;
  }

  private ConsumerRecord<byte[], byte[]> event(String id, long version, String command, int index, String payload) {
    ObjectNode envelope = JsonNodeFactory.instance.objectNode();
    envelope.put("id", id);
    envelope.put("type", "Changed");
    envelope.put("version", version);
    envelope.set("payload", parse(payload));
    if (command != null) {
      envelope.putObject("meta").put("commandId", command).put("index", index);
    }
    return record(Envelopes.toBytes(envelope));
  }

  private ConsumerRecord<byte[], byte[]> bare(String payload) {
    return record(payload.getBytes(StandardCharsets.UTF_8));
  }

  private ConsumerRecord<byte[], byte[]> record(byte[] value) {
    return new ConsumerRecord<>(partition.topic(), 0, offset++, "k".getBytes(StandardCharsets.UTF_8), value);
  }

  private static List<Verdict> verdicts(List<Fold.Report> reports) {
    List<Verdict> verdicts = new ArrayList<>();
    reports.forEach(r -> verdicts.add(r.verdict()));
    return verdicts;
  }

  private com.fasterxml.jackson.databind.JsonNode state(String key) {
    return parse(new String(store.get("users", key).state(), StandardCharsets.UTF_8));
  }

  private static com.fasterxml.jackson.databind.JsonNode parse(String json) {
    try {
      return Envelopes.parse(json.getBytes(StandardCharsets.UTF_8));
    } catch (java.io.IOException e) {
      throw new IllegalArgumentException(e);
    }
  }
}
