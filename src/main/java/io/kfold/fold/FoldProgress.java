package io.kfold.fold;

import org.apache.kafka.common.TopicPartition;

import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;
import java.util.stream.Collectors;

/**
 * What the fold has done so far, read by {@code /ready} and {@code /metrics}. Written by the fold's
 * thread only; read from anywhere.
 */
public final class FoldProgress {

  public final LongAdder applied = new LongAdder();
  public final LongAdder duplicates = new LongAdder();
  /** Contributions applied to the rows of views (not counted in {@link #applied}, which counts events). */
  public final LongAdder contributionsApplied = new LongAdder();
  /** Contributions skipped as copies of ones their rows applied already. */
  public final LongAdder contributionsSkipped = new LongAdder();
  public final LongAdder conflicts = new LongAdder();
  public final LongAdder deadLettered = new LongAdder();
  public final LongAdder batches = new LongAdder();
  /** Hears of each folded batch: its records and how long folding and writing it took. */
  public interface BatchListener {
    void folded(int records, long nanos);
  }

  private volatile BatchListener batchListener = (records, nanos) -> { };

  public void onBatch(BatchListener listener) {
    batchListener = listener;
  }

  void batchFolded(int records, long nanos) {
    batches.increment();
    batchListener.folded(records, nanos);
  }
  /** Assignments the group gave this node: one per rebalance it took part in. */
  public final LongAdder assignments = new LongAdder();
  /**
   * Partitions the group took away from this node, one by one. Rebalances are incremental: a
   * partition the node keeps through a rebalance is not counted.
   */
  public final LongAdder partitionsTakenAway = new LongAdder();

  private volatile boolean assigned;
  private volatile Map<TopicPartition, Long> lag = Map.of();
  /** Assigned partitions the fold does not fold yet: being restored, or about to go on from the store's offset. */
  private volatile Set<TopicPartition> takingUp = Set.of();
  /** Assigned partitions the fold has read to their end at least once since it was given them. */
  private final Set<TopicPartition> currentPartitions = ConcurrentHashMap.newKeySet();

  private volatile int generation = -1;
  /** Per partition being restored from its changelog: records read, and records to read. */
  private final Map<TopicPartition, long[]> restoring = new ConcurrentHashMap<>();
  private volatile Set<TopicPartition> standbys = Set.of();
  /** Changelog partitions kept warm whose copy has been read to the end at least once since they were given. */
  private final Set<TopicPartition> standbysCaughtUp = ConcurrentHashMap.newKeySet();

  /** Per partition of a view's rows this node folds, the versions complete in it (see ViewType). */
  private final Map<TopicPartition, List<String>> viewVersionsComplete = new ConcurrentHashMap<>();

  void viewVersionsComplete(TopicPartition partition, List<io.kfold.view.ViewVersion> versions) {
    viewVersionsComplete.put(partition, versions.stream().map(Object::toString).sorted().toList());
  }

  /** Per partition of a view's rows this node folds, the versions complete in it. */
  public Map<TopicPartition, List<String>> viewVersionsComplete() {
    return Map.copyOf(viewVersionsComplete);
  }

  void restoring(TopicPartition partition, long done, long total) {
    restoring.put(partition, new long[] {done, total});
  }

  void restored(TopicPartition partition) {
    restoring.remove(partition);
  }

  /** The partitions being restored from their changelogs: records read, and records to read. */
  public Map<TopicPartition, long[]> restoring() {
    return Map.copyOf(restoring);
  }

  void standbys(Set<TopicPartition> changelogs) {
    standbys = Set.copyOf(changelogs);
    standbysCaughtUp.retainAll(changelogs);
  }

  /** The copy of a changelog partition kept warm has been read to its end. */
  void standbyReadToEnd(TopicPartition changelog) {
    if (standbys.contains(changelog)) {
      standbysCaughtUp.add(changelog);
    }
  }

  /**
   * Whether this node keeps a warm copy of the changelog partition and has read it to its end at
   * least once: the copy is then the partition as it was at some moment (maybe behind the owner),
   * not the part of it read so far (a compacted changelog read half-way holds some entities' latest
   * states and lacks others).
   */
  public boolean standbyCaughtUp(TopicPartition changelog) {
    return standbys.contains(changelog) && standbysCaughtUp.contains(changelog);
  }

  /** The changelog partitions this node keeps warm copies from. */
  public Set<TopicPartition> standbys() {
    return standbys;
  }

  /** Those of {@link #standbys} whose copy has been read to its end: the ones a stale read may answer from. */
  public Set<TopicPartition> standbysReadToEnd() {
    Set<TopicPartition> kept = standbys;
    return standbysCaughtUp.stream().filter(kept::contains).collect(Collectors.toUnmodifiableSet());
  }

  /**
   * The group has given this node its partitions (maybe none, when there are more nodes than
   * partitions), and the fold has reported the ones it takes up ({@link #lag}).
   */
  void assigned(int groupGeneration) {
    assigned = true;
    generation = groupGeneration;
    assignments.increment();
  }

  /** The consumer group's generation of the last assignment: a later one supersedes every earlier claim. */
  public int generation() {
    return generation;
  }

  /** The lag of each partition the fold folds, and the assigned partitions it is still taking up. */
  void lag(Map<TopicPartition, Long> lagByPartition, Set<TopicPartition> notYetFolded) {
    takingUp = Set.copyOf(notYetFolded);
    currentPartitions.retainAll(lagByPartition.keySet());
    lagByPartition.forEach((partition, records) -> {
      if (records == 0) {
        currentPartitions.add(partition);
      }
    });
    lag = Map.copyOf(lagByPartition);
  }

  /**
   * The group takes the partitions away (maybe to give some back): the node stops taking writes for
   * their entities at once, and must catch up on them again if they come back.
   */
  void revoked(Collection<TopicPartition> partitions) {
    partitionsTakenAway.add(partitions.size());
    assigned = false;  // until the group's next assignment is taken up
    currentPartitions.removeAll(partitions);
    partitions.forEach(viewVersionsComplete::remove);
    Map<TopicPartition, Long> left = new HashMap<>(lag);
    partitions.forEach(left::remove);
    lag = Map.copyOf(left);
  }

  /** The fold stopped (for good, or to open again after a failure): it folds, restores and keeps warm nothing. */
  void stopped() {
    assigned = false;
    lag = Map.of();
    takingUp = Set.of();
    currentPartitions.clear();
    restoring.clear();
    standbys = Set.of();
    standbysCaughtUp.clear();
    viewVersionsComplete.clear();
  }

  /** Records not yet folded in each assigned partition; -1 where not known yet. */
  public Map<TopicPartition, Long> lag() {
    return lag;
  }

  /** Whether the group gave this node the partition to fold. */
  public boolean folds(TopicPartition partition) {
    return lag.containsKey(partition);
  }

  /**
   * Whether this node folds the partition and, since the group gave it the partition, has folded
   * everything the partition held: only then are its states of the partition's entities current.
   * Until then they may lag behind what the previous owner folded and acknowledged.
   */
  public boolean current(TopicPartition partition) {
    return folds(partition) && currentPartitions.contains(partition);
  }

  /**
   * Whether the node may say it is ready: the group gave it its partitions, none is being taken up
   * or restored, and it has read each to its end at least once since it was given it. Unlike
   * {@link #caughtUp}, a partition stays so while writes keep coming (its lag is rarely zero under
   * load), so readiness does not flap with every poll.
   */
  public boolean foldsAllAssigned() {
    return assigned && takingUp.isEmpty() && restoring.isEmpty() && currentPartitions.containsAll(lag.keySet());
  }

  /** True once the group gave this node its partitions and it has folded all they held. */
  public boolean caughtUp() {
    return assigned && takingUp.isEmpty() && restoring.isEmpty() && lag.values().stream().allMatch(l -> l == 0);
  }
}
