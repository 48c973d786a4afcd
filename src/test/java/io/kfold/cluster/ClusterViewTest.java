package io.kfold.cluster;

import io.kfold.TestClock;

import io.kfold.cluster.NodeDirectory.Claim;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.Instant;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;

/** The bookkeeping of the nodes topic's claims, with a clock the test moves: no broker, no waiting. */
class ClusterViewTest {

  private static final Duration KEEP_DEAD = Duration.ofMinutes(1);

  private final TestClock clock = new TestClock(Instant.parse("2026-12-01T10:00:00Z"));
  private final ClusterView view = new ClusterView(clock, KEEP_DEAD);

  @Test
  @DisplayName("a node absent from a later generation in which others claim is dead, and owns nothing any more")
  void absentFromLaterGeneration() {
    claim("a", 1, "t-0", "t-1");
    claim("b", 1, "t-2", "t-3");
    clock.advance(Duration.ofSeconds(5));
    claim("a", 2, "t-0", "t-1");  // b's partitions are revoked, not yet given to anyone

    assertThat(view.nodes().get("a").live()).isTrue();
    assertThat(view.nodes().get("b").live()).as("b is not in generation 2").isFalse();
    assertThat(view.nodes().get("b").deadSince()).isEqualTo(clock.instant());
    assertThat(view.owner("t-2")).as("a dead node's partition has no owner until another node claims it").isEmpty();
    assertThat(view.owner("t-0")).map(Claim::node).contains("a");
    assertThat(view.latestGeneration()).extracting(Claim::node).containsExactly("a");
  }

  @Test
  @DisplayName("a node whose partitions are all claimed by others in a later generation is dead; they own them")
  void partitionsClaimedByOthers() {
    claim("a", 4, "t-0");
    claim("b", 4, "t-1");
    claim("c", 4, "t-2", "t-3");
    claim("a", 5, "t-0", "t-2");
    claim("b", 5, "t-1", "t-3");

    assertThat(view.nodes().get("c").live()).isFalse();
    assertThat(view.owner("t-2")).map(Claim::node).contains("a");
    assertThat(view.owner("t-3")).map(Claim::node).contains("b");
    assertThat(view.latestGeneration()).extracting(Claim::node).containsExactlyInAnyOrder("a", "b");
  }

  @Test
  @DisplayName("a dead node stays in view, dead, for a minute after the claim that showed it, then is dropped")
  void deadNodeDroppedAfterAMinute() {
    claim("a", 1, "t-0");
    claim("b", 1, "t-1");
    claim("a", 2, "t-0", "t-1");
    Instant diedAt = clock.instant();

    clock.advance(KEEP_DEAD.minusSeconds(1));
    assertThat(view.nodes()).containsKey("b");
    assertThat(view.nodes().get("b").deadSince()).isEqualTo(diedAt);

    clock.advance(Duration.ofSeconds(2));
    assertThat(view.nodes()).containsOnlyKeys("a");
    assertThat(view.owner("t-1")).map(Claim::node).contains("a");
  }

  @Test
  @DisplayName("claims of dead nodes read long after they died (a node starting) are dropped at once")
  void oldDeadClaimsDroppedAtOnce() {
    Instant twoHoursAgo = clock.instant().minus(Duration.ofHours(2));
    view.claimed(new Claim("gone", "http://gone", 3, Set.of("t-0", "t-1")), twoHoursAgo);
    view.claimed(new Claim("a", "http://a", 4, Set.of("t-0", "t-1")), twoHoursAgo.plusSeconds(30));

    assertThat(view.nodes()).containsOnlyKeys("a");
  }

  @Test
  @DisplayName("a node that claims the new generation a moment after the others is live again")
  void lateClaimIsLiveAgain() {
    claim("a", 1, "t-0");
    claim("b", 1, "t-1");
    claim("a", 2, "t-0");
    assertThat(view.nodes().get("b").live()).isFalse();
    claim("b", 2, "t-1");

    assertThat(view.nodes().get("b").live()).isTrue();
    assertThat(view.owner("t-1")).map(Claim::node).contains("b");
    clock.advance(Duration.ofHours(1));
    assertThat(view.nodes()).containsOnlyKeys("a", "b");
  }

  @Test
  @DisplayName("a node that has not joined yet is live until the group forms a generation without it")
  void joiningNode() {
    claim("a", 3, "t-0", "t-1");
    claim("new", -1);
    claim("a", 3, "t-0");  // the rebalance for the new node revokes a's partitions: same generation
    assertThat(view.nodes().get("new").live()).isTrue();

    claim("a", 4, "t-0");
    assertThat(view.nodes().get("new").live()).as("the new node died before it joined").isFalse();
    claim("new", 4, "t-1");
    assertThat(view.nodes().get("new").live()).isTrue();
  }

  @Test
  @DisplayName("a claim written late for a generation the group has passed stays live until a later generation is claimed after it; the later generation owns what both claim")
  void lateClaimOfAPassedGeneration() {
    claim("a", 5, "t-0", "t-1");
    claim("behind", 4, "t-1", "t-2");  // a node the group left behind, about to rejoin or die

    assertThat(view.nodes().get("behind").live()).isTrue();
    assertThat(view.owner("t-1")).map(Claim::node).contains("a");
    claim("a", 6, "t-0", "t-1", "t-2");
    assertThat(view.nodes().get("behind").live()).isFalse();
    assertThat(view.owner("t-2")).map(Claim::node).contains("a");
  }

  @Test
  @DisplayName("when the group starts its generations over (it was deleted), the claims of the new generations are live")
  void generationsStartOver() {
    claim("killed-long-ago", 50, "t-0");  // left in the compacted topic by a node killed -9
    claim("a", -1);
    claim("a", 1, "t-1");
    claim("b", 2, "t-0", "t-1");

    assertThat(view.nodes().get("b").live()).isTrue();
    assertThat(view.nodes().get("a").live()).as("a is not in generation 2").isFalse();
  }

  @Test
  @DisplayName("a node that stopped cleanly withdraws its claim and leaves the view at once")
  void withdrawn() {
    claim("a", 1, "t-0");
    claim("b", 1, "t-1");
    view.withdrawn("b");

    assertThat(view.nodes()).containsOnlyKeys("a");
    assertThat(view.owner("t-1")).isEmpty();
  }

  private void claim(String node, int generation, String... partitions) {
    view.claimed(new Claim(node, "http://" + node, generation, Set.of(partitions)), clock.instant());
  }
}
