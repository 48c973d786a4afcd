package io.kfold.cluster;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Which nodes went silent, judged by heartbeats through the nodes topic: every node writes its
 * claim again every {@link #BEAT}, and every node reads the topic's records in the order they were
 * written. A node none of whose records came among the last {@link #SILENT_AFTER} beats of this
 * node's own has been silent for that long, however late this node reads: time is counted in this
 * node's own beats as it reads them back, not by other nodes' clocks. A node that cannot write or
 * read the topic (cut off, the broker gone) counts no beats and so suspects no one; and when its own
 * beats come back after such a gap, every node starts with a clean slate, since the others were cut
 * off too and may reconnect a little later.
 *
 * <p>Kafka's own failure detection, the group's session timeout (45 s by default), stays as the
 * backstop: a node whose last record is older than that is not reported, the group has already
 * removed it. Bookkeeping only, on the directory's thread.
 */
final class SilentNodes {

  /** How often a node writes its claim again. */
  static final Duration BEAT = Duration.ofMillis(500);
  /**
   * This node's own beats without a record of another node, after which that one is silent: 2.5 to
   * 3 s. Three (1 to 1.5 s) took nodes for dead while three JVMs started at once on two cores.
   */
  static final int SILENT_AFTER = 6;
  /** While a node stays silent, it is reported again every so many beats (a removal that failed is retried). */
  private static final int REPORT_AGAIN_AFTER = 10;

  private record Heard(long atBeat, Instant written) {}

  /** A silent node; {@code again}: it was reported before, and is still silent. */
  record Silent(String node, boolean again) {}

  private final String self;
  private final Duration sessionTimeout;
  private long ownBeats;
  /** When this node last read a beat of its own, by its clock; null before the first. */
  private Instant lastOwnBeat;
  /** Per other node with a claim: the count of this node's beats when its last record came, and that record's time. */
  private final Map<String, Heard> heard = new HashMap<>();
  /** Per silent node reported: the count of this node's beats when it was. */
  private final Map<String, Long> reported = new HashMap<>();

  SilentNodes(String self, Duration sessionTimeout) {
    this.self = self;
    this.sessionTimeout = sessionTimeout;
  }

  /** A claim of {@code node}, written at {@code written}, was read at {@code now}. */
  void heard(String node, Instant written, Instant now) {
    if (node.equals(self)) {
      if (lastOwnBeat != null && lastOwnBeat.plus(BEAT.multipliedBy(SILENT_AFTER)).isBefore(now)) {
        heard.replaceAll((name, last) -> new Heard(ownBeats, last.written()));
      }
      lastOwnBeat = now;
      ownBeats++;
    } else {
      heard.put(node, new Heard(ownBeats, written));
      reported.remove(node);
    }
  }

  /** {@code node} withdrew its claim: it stopped and left the groups itself. */
  void withdrawn(String node) {
    heard.remove(node);
    reported.remove(node);
  }

  /**
   * The nodes silent for {@link #SILENT_AFTER} of this node's beats, whose last record is younger
   * than the session timeout; each once, then again every {@link #REPORT_AGAIN_AFTER} beats while it
   * stays silent. Only the first of the nodes still heard, by name, reports: one node acts for all.
   */
  List<Silent> silent(Instant now) {
    List<String> silent = new ArrayList<>();
    String first = self;
    for (Map.Entry<String, Heard> node : heard.entrySet()) {
      if (ownBeats - node.getValue().atBeat() >= SILENT_AFTER) {
        silent.add(node.getKey());
      } else if (node.getKey().compareTo(first) < 0) {
        first = node.getKey();
      }
    }
    if (!first.equals(self)) {
      return List.of();
    }
    silent.removeIf(node -> heard.get(node).written().plus(sessionTimeout).isBefore(now)
        || reported.containsKey(node) && ownBeats - reported.get(node) < REPORT_AGAIN_AFTER);
    silent.sort(null);
    List<Silent> reports = new ArrayList<>();
    for (String node : silent) {
      reports.add(new Silent(node, reported.put(node, ownBeats) != null));
    }
    return reports;
  }
}
