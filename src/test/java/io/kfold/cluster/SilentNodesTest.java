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
      nodes.heard(node, NOW, NOW);
    }
  }

  @Test
  @DisplayName("a node none of whose claims came among this node's last beats is silent, reported once, again later")
  void silentAfterOwnBeats() {
    SilentNodes nodes = new SilentNodes("a", Duration.ofSeconds(45));
    nodes.heard("b", NOW, NOW);
    beat(nodes, "a", SilentNodes.SILENT_AFTER - 1);
    assertThat(nodes.silent(NOW)).as("silent for fewer beats than needed").isEmpty();
    beat(nodes, "a", 1);
    assertThat(nodes.silent(NOW)).containsExactly(new SilentNodes.Silent("b", false));
    beat(nodes, "a", 1);
    assertThat(nodes.silent(NOW)).as("reported already").isEmpty();
    beat(nodes, "a", 10);
    assertThat(nodes.silent(NOW)).as("still silent: reported again")
        .containsExactly(new SilentNodes.Silent("b", true));
    nodes.heard("b", NOW, NOW);
    beat(nodes, "a", SilentNodes.SILENT_AFTER - 1);
    assertThat(nodes.silent(NOW)).as("heard again").isEmpty();
  }

  @Test
  @DisplayName("no beats of its own, no suspicion: a node cut off from the topic suspects no one")
  void noOwnBeatsNoSuspicion() {
    SilentNodes nodes = new SilentNodes("a", Duration.ofSeconds(45));
    nodes.heard("b", NOW, NOW);
    assertThat(nodes.silent(NOW.plusSeconds(30))).isEmpty();
  }

  @Test
  @DisplayName("a node that withdrew, or whose last claim is older than the session timeout, is not reported")
  void withdrawnOrExpired() {
    SilentNodes nodes = new SilentNodes("a", Duration.ofSeconds(45));
    nodes.heard("b", NOW, NOW);
    nodes.heard("c", NOW.minusSeconds(60), NOW);
    nodes.withdrawn("b");
    beat(nodes, "a", SilentNodes.SILENT_AFTER);
    assertThat(nodes.silent(NOW)).isEmpty();
  }

  @Test
  @DisplayName("after a gap in its own beats (the topic out of reach), a node gives the others a clean slate")
  void gapInOwnBeats() {
    SilentNodes nodes = new SilentNodes("a", Duration.ofSeconds(45));
    nodes.heard("a", NOW, NOW);
    nodes.heard("b", NOW, NOW);
    Instant back = NOW.plusSeconds(8);
    for (int i = 0; i < SilentNodes.SILENT_AFTER - 1; i++) {
      nodes.heard("a", back, back.plus(SilentNodes.BEAT.multipliedBy(i)));
    }
    assertThat(nodes.silent(back)).as("b reconnects later than a after the gap").isEmpty();
    nodes.heard("a", back, back.plus(SilentNodes.BEAT.multipliedBy(SilentNodes.SILENT_AFTER)));
    assertThat(nodes.silent(back)).as("b silent for three beats since").containsExactly(new SilentNodes.Silent("b", false));
  }

  @Test
  @DisplayName("only the first live node by name reports, so that one node acts for all")
  void firstLiveNodeReports() {
    SilentNodes b = new SilentNodes("b", Duration.ofSeconds(45));
    b.heard("c", NOW, NOW);
    for (int i = 0; i < SilentNodes.SILENT_AFTER; i++) {
      b.heard("a", NOW, NOW);
      b.heard("b", NOW, NOW);
    }
    assertThat(b.silent(NOW)).as("a, first by name, is live and reports").isEmpty();
    beat(b, "b", SilentNodes.SILENT_AFTER);
    assertThat(b.silent(NOW)).as("a went silent too: b is the first live node").containsExactly(new SilentNodes.Silent("a", false), new SilentNodes.Silent("c", false));
  }
}
