package io.kfold.cluster;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.Instant;

import static org.assertj.core.api.Assertions.assertThat;

class SilentNodesTest {

  private static final Instant NOW = Instant.parse("2026-11-29T10:00:00Z");

  private static void beat(SilentNodes nodes, String node, int times) {
    for (int i = 0; i < times; i++) {
      nodes.heard(node, NOW);
    }
  }

  @Test
  @DisplayName("a node none of whose claims came among this node's last beats is silent, reported once, again later")
  void silentAfterOwnBeats() {
    SilentNodes nodes = new SilentNodes("a", Duration.ofSeconds(45));
    nodes.heard("b", NOW);
    beat(nodes, "a", SilentNodes.SILENT_AFTER - 1);
    assertThat(nodes.silent(NOW)).as("silent for fewer beats than needed").isEmpty();
    beat(nodes, "a", 1);
    assertThat(nodes.silent(NOW)).containsExactly("b");
    beat(nodes, "a", 1);
    assertThat(nodes.silent(NOW)).as("reported already").isEmpty();
    beat(nodes, "a", 10);
    assertThat(nodes.silent(NOW)).as("still silent: reported again").containsExactly("b");
    nodes.heard("b", NOW);
    beat(nodes, "a", SilentNodes.SILENT_AFTER - 1);
    assertThat(nodes.silent(NOW)).as("heard again").isEmpty();
  }

  @Test
  @DisplayName("no beats of its own, no suspicion: a node cut off from the topic suspects no one")
  void noOwnBeatsNoSuspicion() {
    SilentNodes nodes = new SilentNodes("a", Duration.ofSeconds(45));
    nodes.heard("b", NOW);
    assertThat(nodes.silent(NOW.plusSeconds(30))).isEmpty();
  }

  @Test
  @DisplayName("a node that withdrew, or whose last claim is older than the session timeout, is not reported")
  void withdrawnOrExpired() {
    SilentNodes nodes = new SilentNodes("a", Duration.ofSeconds(45));
    nodes.heard("b", NOW);
    nodes.heard("c", NOW.minusSeconds(60));
    nodes.withdrawn("b");
    beat(nodes, "a", SilentNodes.SILENT_AFTER);
    assertThat(nodes.silent(NOW)).isEmpty();
  }

  @Test
  @DisplayName("only the first live node by name reports, so that one node acts for all")
  void firstLiveNodeReports() {
    SilentNodes b = new SilentNodes("b", Duration.ofSeconds(45));
    b.heard("c", NOW);
    for (int i = 0; i < SilentNodes.SILENT_AFTER; i++) {
      b.heard("a", NOW);
      b.heard("b", NOW);
    }
    assertThat(b.silent(NOW)).as("a, first by name, is live and reports").isEmpty();
    beat(b, "b", SilentNodes.SILENT_AFTER);
    assertThat(b.silent(NOW)).as("a went silent too: b is the first live node").containsExactly("a", "c");
  }
}
