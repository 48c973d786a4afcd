package io.kfold.effects;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;

/**
 * Orders a worker's jobs per entity: one job at a time per entity, in the order added, and up to
 * {@code maxInFlight} entities at once. It holds at most about {@code bufferBound} jobs before it
 * asks the consumer to pause ({@link #overloaded}).
 */
final class EntityScheduler<T> {

  private final int maxInFlight;
  private final int bufferBound;
  private final Map<EntityRef, ArrayDeque<T>> queues = new HashMap<>();
  /** Entities whose head job may start, in the order they became ready. */
  private final ArrayDeque<EntityRef> ready = new ArrayDeque<>();
  private final Set<EntityRef> running = new HashSet<>();
  private int buffered;

  EntityScheduler(int maxInFlight, int bufferBound) {
    this.maxInFlight = maxInFlight;
    this.bufferBound = bufferBound;
  }

  void add(EntityRef entity, T job) {
    ArrayDeque<T> queue = queues.computeIfAbsent(entity, e -> new ArrayDeque<>());
    queue.add(job);
    buffered++;
    if (queue.size() == 1 && !running.contains(entity)) {
      ready.add(entity);
    }
  }

  /** The jobs to start now: the head job of ready entities, while fewer than maxInFlight run. They count as running. */
  List<T> startable() {
    List<T> starting = new ArrayList<>();
    while (!ready.isEmpty() && running.size() < maxInFlight) {
      EntityRef entity = ready.poll();
      ArrayDeque<T> queue = queues.get(entity);
      if (queue != null && !queue.isEmpty()) {
        running.add(entity);
        starting.add(queue.peek());
      }
    }
    return starting;
  }

  /** The entity's running job is over: its next job, if any, becomes ready. */
  void finished(EntityRef entity) {
    if (!running.remove(entity)) {
      return;
    }
    ArrayDeque<T> queue = queues.get(entity);
    queue.poll();
    buffered--;
    if (queue.isEmpty()) {
      queues.remove(entity);
    } else {
      ready.add(entity);
    }
  }

  /** Drops the waiting jobs that match; a running job stays until it is finished. */
  void drop(Predicate<T> gone) {
    for (Iterator<Map.Entry<EntityRef, ArrayDeque<T>>> it = queues.entrySet().iterator(); it.hasNext(); ) {
      Map.Entry<EntityRef, ArrayDeque<T>> entry = it.next();
      ArrayDeque<T> queue = entry.getValue();
      T head = running.contains(entry.getKey()) ? queue.peek() : null;
      int before = queue.size();
      queue.removeIf(job -> job != head && gone.test(job));
      buffered -= before - queue.size();
      if (queue.isEmpty()) {
        it.remove();
      }
    }
    ready.removeIf(entity -> !queues.containsKey(entity));
  }

  int inFlight() {
    return running.size();
  }

  boolean overloaded() {
    return buffered > bufferBound;
  }
}
