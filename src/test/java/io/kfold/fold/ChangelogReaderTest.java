package io.kfold.fold;

import io.kfold.InterceptedStore;
import io.kfold.config.NodeConfig;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.entity.EntityType;
import io.kfold.types.EntityTypes;
import io.kfold.log.KafkaClients;
import io.kfold.log.Topics;
import io.kfold.store.ChangelogItem;
import io.kfold.store.EntityStore;
import io.kfold.store.RocksEntityStore;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.file.Path;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.LockSupport;

import static org.assertj.core.api.Assertions.assertThat;

/** The changelog reader against a real broker and a real store, driven round by round as the fold's loop does. */
@ExtendWith(TestBroker.class)
class ChangelogReaderTest {

  private static final int ITEMS = 30_000;

  private NodeConfig config;
  private EntityStore store;
  private Fold fold;
  private final FoldProgress progress = new FoldProgress();
  private ChangelogReader reader;
  private TopicPartition events;

  @BeforeEach
  void setUp() throws Exception {
    Path dir = TestNodes.tempDir("changelog-reader");
    config = TestNodes.config(TestNodes.newApp("changelog-reader"), dir);
    try (Admin admin = Admin.create(KafkaClients.admin(config.kafka(), config.app() + "-test"))) {
      Topics.ensure(admin, config, EntityTypes.from(config).all().stream().map(EntityType::name).toList());
    }
    events = new TopicPartition(config.eventsTopic("users"), 0);
    // A changelog of markers only: each says the partition is folded up to one offset further.
    try (KafkaProducer<byte[], byte[]> producer = TestNodes.plainProducer()) {
      for (int i = 1; i <= ITEMS; i++) {
        ChangelogItem marker = ChangelogItem.nextOffset(events.topic(), 0, i);
        producer.send(new ProducerRecord<>(config.changelogTopic("users"), 0, marker.key(), marker.value()));
      }
    }
    // A store that takes 10 µs per item: a slice reads a share of the changelog, not all of it.
    store = new InterceptedStore(new RocksEntityStore(dir.resolve("store")),
        batch -> LockSupport.parkNanos(batch.size() * 10_000L));
    fold = new Fold(config, EntityTypes.from(config), store, progress);
    reader = new ChangelogReader(config, fold, store, progress, Clock.systemUTC());
  }

  @AfterEach
  void tearDown() {
    reader.close();
    fold.close();
    store.close();
  }

  @Test
  @DisplayName("a restore runs in slices that each end soon; /ready shows how far it is, and the store's offset is the"
      + " last marker read")
  void restoresInSlices() {
    assertThat(reader.restoreOrResume(List.of(events))).as("partitions to go on with at once").isEmpty();
    assertThat(progress.restoring().get(events)).containsExactly(0, ITEMS);
    List<TopicPartition> completed = new ArrayList<>();
    int slices = 0;
    while (completed.isEmpty()) {
      long started = System.nanoTime();
      completed.addAll(reader.restoreSlice());
      slices++;
      assertThat((System.nanoTime() - started) / 1_000_000).as("milliseconds of slice %d", slices).isLessThan(1_000);
      assertThat(slices).as("slices").isLessThan(1_000);
    }
    assertThat(completed).containsExactly(events);
    assertThat(slices).as("slices").isGreaterThan(1);
    assertThat(progress.restoring()).isEmpty();
    assertThat(store.nextOffset(events.topic(), 0)).hasValue(ITEMS);
    assertThat(reader.restoring()).isFalse();
  }

  @Test
  @DisplayName("a restore stopped because its partition moved goes on from where it stopped when the partition comes back")
  void goesOnWhereItStopped() {
    reader.restoreOrResume(List.of(events));
    while (store.nextOffset(events.topic(), 0).isEmpty()) {
      assertThat(reader.restoreSlice()).as("restored whole in a slice").isEmpty();
    }
    long restoredUpTo = store.nextOffset(events.topic(), 0).getAsLong();
    reader.cancel(List.of(events));
    assertThat(reader.restoring()).isFalse();
    assertThat(progress.restoring()).isEmpty();

    assertThat(reader.restoreOrResume(List.of(events))).as("partitions to go on with at once").isEmpty();
    // Markers i sit at offset i - 1: the restore goes on from the offset after the last marker read.
    assertThat(progress.restoring().get(events)[1]).as("records left to read").isEqualTo(ITEMS - restoredUpTo);
    while (reader.restoreSlice().isEmpty()) {
      assertThat(reader.restoring()).isTrue();
    }
    assertThat(store.nextOffset(events.topic(), 0)).hasValue(ITEMS);
  }
}
