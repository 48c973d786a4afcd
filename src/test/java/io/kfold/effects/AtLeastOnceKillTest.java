package io.kfold.effects;

import io.kfold.config.NodeConfig;
import io.kfold.KfoldProcess;
import io.kfold.TestBroker;
import io.kfold.effects.TargetServer.Call;
import io.vertx.core.Vertx;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/** At-least-once across kill -9: the worker may deliver a change twice, never loses one. */
@ExtendWith(TestBroker.class)
class AtLeastOnceKillTest {

  private static final Logger LOG = LoggerFactory.getLogger(AtLeastOnceKillTest.class);
  private static final int KILLS = 3;

  @Test
  @DisplayName("at-least-once, kfold killed with SIGKILL three times while it delivers: every change is delivered, each"
      + " time with its event id as Idempotency-Key; the repeats are counted")
  void neverLost() throws Exception {
    Vertx vertx = Vertx.vertx();
    TargetServer server = new TargetServer(vertx);
    // Events keep coming through the kills, so each restart finds a backlog: a kill finds changes
    // running, and waiting in the worker.
    server.answerAfterMs = body -> 10;
    KillsDuringDelivery.Worker worker = KillsDuringDelivery.Worker.of("alo", "at-least-once", server);
    NodeConfig config = worker.config();
    KfoldProcess kfold = worker.process();
    try {
      kfold.start();
      KillsDuringDelivery.Producing producing = new KillsDuringDelivery.Producing(config, 10);
      KillsDuringDelivery.killWhileDelivering(kfold, server, KILLS, 300, kill -> { });
      int events = producing.stop();
      kfold.awaitStatus("/ready", 200);

      KillsDuringDelivery.awaitSentinels(config, kfold, server);

      Set<String> expected = KillsDuringDelivery.changes(events);
      List<Call> calls = server.calls().stream().filter(call -> !call.entity().startsWith("sentinel-")).toList();
      Set<String> delivered = new HashSet<>();
      calls.forEach(call -> delivered.add(call.changeId()));
      Set<String> missing = new TreeSet<>(expected);
      missing.removeAll(delivered);
      assertThat(missing).as("changes never delivered (%d of %d) after %d kills", missing.size(), events, KILLS).isEmpty();
      assertThat(delivered).as("only changes that exist were delivered").isEqualTo(expected);
      Map<String, Set<String>> keys = new TreeMap<>();
      calls.forEach(call -> keys.computeIfAbsent(call.changeId(), id -> new TreeSet<>()).add(call.key()));
      assertThat(calls).as("each call's Idempotency-Key is its event's id").allMatch(call -> call.key().equals(call.eventId()));
      keys.values().removeIf(set -> set.size() == 1);
      assertThat(keys).as("changes delivered again under another Idempotency-Key").isEmpty();
      int repeats = calls.size() - delivered.size();
      LOG.info("at-least-once across {} kills: {} changes, {} calls, {} of them repeats", KILLS, events, calls.size(),
          repeats);
    } finally {
      kfold.stopIfAlive();
      server.close();
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }
}
