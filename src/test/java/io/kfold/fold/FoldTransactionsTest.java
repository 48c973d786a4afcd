package io.kfold.fold;

import io.kfold.Await;
import io.kfold.TestBroker;
import io.kfold.TestClock;
import io.kfold.config.NodeConfig;
import io.kfold.log.KafkaClients;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The fold's transactions on a real broker: a transaction spans polls until the commit interval has
 * passed (a commit after every small poll was what a busy node's commands waited for), and an empty
 * poll commits at once.
 */
@ExtendWith(TestBroker.class)
class FoldTransactionsTest {

  private static final Duration INTERVAL = Duration.ofMillis(100);

  private final String app = "txn-" + UUID.randomUUID().toString().substring(0, 8);
  private final TopicPartition source = new TopicPartition(app + ".users.events", 0);
  private final TopicPartition changes = new TopicPartition(app + ".users.changes", 0);
  private final String changelog = app + ".users.changelog";
  private final TestClock clock = new TestClock();
  private Admin admin;
  private FoldTransactions transactions;

  @BeforeEach
  void start() throws Exception {
    NodeConfig.Kafka kafka = new NodeConfig.Kafka(TestBroker.bootstrap(), 1, (short) 1, 0, "", 45_000);
    admin = Admin.create(KafkaClients.admin(kafka, app + "-test"));
    admin.createTopics(List.of(new NewTopic(changes.topic(), 1, (short) 1), new NewTopic(changelog, 1, (short) 1)))
        .all().get();
    Await.until("the topics' leaders", () -> admin.describeTopics(List.of(changes.topic(), changelog)).allTopicNames()
        .get().values().stream().allMatch(t -> t.partitions().stream().allMatch(p -> p.leader() != null)));
    transactions = new FoldTransactions(KafkaClients.transactionalPublisher(kafka, app + "-publisher", app + "-fold"),
        () -> {
          throw new AssertionError("these transactions commit no offsets");
        }, clock, INTERVAL);
  }

  @AfterEach
  void stop() {
    if (transactions != null) {
      transactions.close();
    }
    if (admin != null) {
      admin.close();
    }
  }

  @Test
  @DisplayName("while polls bring records, a transaction stays open until the commit interval has passed; then its"
      + " records become visible")
  void commitsOncePerInterval() throws Exception {
    send(1);
    assertThat(transactions.commitIfDue()).as("committed before the interval passed").isEmpty();
    send(2);
    clock.advance(INTERVAL.minusMillis(1));
    assertThat(transactions.commitIfDue()).as("committed before the interval passed").isEmpty();
    assertThat(visibleEnd()).as("records of an open transaction are not read").isZero();

    clock.advance(Duration.ofMillis(1));
    assertThat(transactions.commitIfDue()).containsExactlyEntriesOf(Map.of(source, 2L));
    Await.until("both changes visible to read-committed readers", () -> visibleEnd() >= 2);
  }

  @Test
  @DisplayName("an empty poll commits at once, however short the transaction has been open")
  void emptyPollCommitsAtOnce() throws Exception {
    send(1);
    assertThat(transactions.commit()).containsExactlyEntriesOf(Map.of(source, 1L));
    Await.until("the change visible to read-committed readers", () -> visibleEnd() >= 1);
    assertThat(transactions.commitIfDue()).as("nothing open").isEmpty();
  }

  /** Adds the change of the source record before {@code next} to the open transaction. */
  private void send(long next) {
    transactions.send(source, changelog, List.of(new ProducerRecord<>(changes.topic(), changes.partition(), "user-1",
        ("{\"version\":" + next + "}").getBytes(StandardCharsets.UTF_8))), List.of(), next);
  }

  /** The end of the changes partition as read-committed readers see it (the last stable offset). */
  private long visibleEnd() throws Exception {
    return admin.listOffsets(Map.of(changes, OffsetSpec.latest()), new ListOffsetsOptions(IsolationLevel.READ_COMMITTED))
        .partitionResult(changes).get().offset();
  }
}
