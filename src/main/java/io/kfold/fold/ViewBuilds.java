package io.kfold.fold;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.config.NodeConfig;
import io.kfold.types.Envelopes;
import io.kfold.store.ChangelogItem;
import io.kfold.store.EntityStore;
import io.kfold.store.StoreBatch;
import io.kfold.store.StoredEntity;
import io.kfold.view.Contributions;
import io.kfold.view.ViewType;
import io.kfold.view.ViewVersion;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.utils.Utils;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Builds versions of views from the stored states of the entities, one source partition at a time,
 * while the fold goes on, and says which versions an entity's change contributes to.
 *
 * <p>Per view and source partition, a build walks the type's stored states in {@link
 * EntityStore#STATE_ORDER}, a chunk per round of the fold's loop, and adds each entity's share to
 * the new version. Its cursor (the last key walked) makes it exact while events keep coming: a
 * change of an entity at or before the cursor contributes to the version (its old share is in it
 * already), a change of one after it does not (the walk will add its state as it is then). Chunks
 * and changes are made by the fold's one thread, so the cursor cannot move between them.
 *
 * <p>A chunk's contributions and the build's new state are written in one store batch (the
 * contributions in an outbox of the build's own, {@link #outbox}), and published in the fold's
 * transaction with the build's state as a changelog item of the source partition: a node that takes
 * the partition over restores the build where it was committed, and goes on from there. A
 * republished chunk is the same records, so the rows' marks skip the copies. When a source
 * partition has walked every state it tells every partition of the view ({@code built}).
 *
 * <p>The build's state is the stored state of an internal entity, {@code _builds / <view>@<events
 * partition>}: {@code {"versions": {"<version>": {"cursor", "chunk", "done", "retired"}}}}. A version
 * is retired once reads answer from a newer one: its changes are contributed no more.
 *
 * <p>Fold thread only, but {@link #contributesTo}, which the fold's workers call between
 * {@link #prepare} and the end of the poll's fold, while nothing changes the builds.
 */
final class ViewBuilds {

  /** The internal type whose entities hold the builds' states. No user type can have this name. */
  static final String TYPE = "_builds";
  /** States walked per round of the fold's loop: small enough to keep the loop's rounds short. */
  static final int CHUNK = 1000;
  private static final String OUTBOX = "#build.";

  private final NodeConfig config;
  private final EntityStore store;
  private final Map<String, List<ViewType>> viewsByType;
  /** The builds' states of the source partitions read so far, by entity key. */
  private final Map<String, ObjectNode> states = new HashMap<>();

  ViewBuilds(NodeConfig config, EntityStore store, Map<String, List<ViewType>> viewsByType) {
    this.config = config;
    this.store = store;
    this.viewsByType = viewsByType;
  }

  /**
   * The outbox of the build steps of a view from a source partition, beside the partition's own.
   * The publisher takes it for a source partition of its own ({@code <events topic>#build.<view>}).
   */
  static TopicPartition outbox(TopicPartition source, ViewType view) {
    return new TopicPartition(source.topic() + OUTBOX + view.definition().name(), source.partition());
  }

  /** The build outboxes of a source partition, one per view from its type. */
  List<TopicPartition> outboxes(TopicPartition source) {
    String type = typeOf(source);
    return type == null ? List.of()
        : viewsByType.get(type).stream().map(view -> outbox(source, view)).toList();
  }

  static boolean isOutbox(TopicPartition partition) {
    return partition.topic().contains(OUTBOX);
  }

  /** The events partition of a build outbox. */
  static TopicPartition sourceOf(TopicPartition outbox) {
    return new TopicPartition(outbox.topic().substring(0, outbox.topic().indexOf(OUTBOX)), outbox.partition());
  }

  private static String key(ViewType view, TopicPartition source) {
    return view.definition().name() + "@" + source;
  }

  /** Forgets what it read of these source partitions: they moved, and their builds may have gone on elsewhere. */
  void forget(Collection<TopicPartition> sources) {
    for (TopicPartition source : sources) {
      states.keySet().removeIf(key -> key.endsWith("@" + source));
    }
  }

  /** Reads the builds' states of the partitions a poll brings, before the fold's workers ask. */
  void prepare(String type, Collection<TopicPartition> sources) {
    for (ViewType view : viewsByType.getOrDefault(type, List.of())) {
      sources.forEach(source -> state(view, source));
    }
  }

  /**
   * The versions of the view that a change of entity {@code key} of partition {@code source}
   * contributes to: those of this node's definition not retired whose build is done or has walked
   * past the entity.
   */
  List<ViewVersion> contributesTo(ViewType view, TopicPartition source, String key) {
    ObjectNode state = states.get(key(view, source));
    List<ViewVersion> versions = new ArrayList<>(2);
    state.path("versions").fields().forEachRemaining(entry -> {
      JsonNode build = entry.getValue();
      ViewVersion version = ViewVersion.parse(entry.getKey());
      if (view.ours(version) && !build.path("retired").asBoolean() && (build.path("done").asBoolean()
          || build.has("cursor") && EntityStore.STATE_ORDER.compare(key, build.get("cursor").asText()) <= 0)) {
        versions.add(version);
      }
    });
    return versions;
  }

  private ObjectNode state(ViewType view, TopicPartition source) {
    return states.computeIfAbsent(key(view, source), key -> {
      StoredEntity stored = store.get(TYPE, key);
      ObjectNode state = stored == null ? JsonNodeFactory.instance.objectNode() : parse(stored.state());
      // A node that missed a rebuild's request learns of it from the build it takes over.
      state.path("versions").fieldNames().forEachRemaining(name -> {
        ViewVersion version = ViewVersion.parse(name);
        if (view.ours(version)) {
          view.atLeastGeneration(version.generation());
        }
      });
      return state;
    });
  }

  /**
   * A step of a build, written to the store: for one source partition, the records to publish and
   * the changelog items; {@code step} is the key of its records in the build outbox.
   */
  record Chunk(TopicPartition outbox, long step, List<ProducerRecord<String, byte[]>> records,
               List<ChangelogItem> changelog, int walked) {}

  /**
   * The steps due in the source partitions among {@code folding}, each written to the store: a chunk
   * of each build under way (or a retirement), until about {@link #CHUNK} states were walked in all.
   * A build that finds no state is done at once, so views on a fresh application are complete
   * before its first events are folded, and cost nothing more.
   */
  List<Chunk> step(Collection<TopicPartition> folding) {
    List<Chunk> steps = new ArrayList<>();
    int walked = 0;
    for (TopicPartition source : folding) {
      String type = typeOf(source);
      for (ViewType view : viewsByType.getOrDefault(type, List.of())) {
        if (walked >= CHUNK) {
          return steps;
        }
        ObjectNode state = state(view, source);
        ViewVersion target = view.target();
        JsonNode build = state.path("versions").path(target.toString());
        if (!build.path("done").asBoolean()) {
          Chunk chunk = chunk(view, type, source, state, target);
          walked += chunk.walked();
          steps.add(chunk);
        } else if (target.equals(view.answering()) && retire(state, target)) {
          state.put("steps", outboxKey(state) + 1);
          steps.add(write(view, source, state, List.of()));
        }
      }
    }
    return steps;
  }

  /** Marks the older versions of this definition retired; answers whether there was any. */
  private static boolean retire(ObjectNode state, ViewVersion target) {
    boolean retired = false;
    for (var entry : (Iterable<Map.Entry<String, JsonNode>>) () -> state.with("versions").fields()) {
      ObjectNode build = (ObjectNode) entry.getValue();
      if (!entry.getKey().equals(target.toString()) && !build.path("retired").asBoolean()) {
        build.put("retired", true);
        retired = true;
      }
    }
    return retired;
  }

  private Chunk chunk(ViewType view, String type, TopicPartition source, ObjectNode state, ViewVersion target) {
    ObjectNode build = state.with("versions").with(target.toString());
    long chunk = build.path("chunk").asLong(0) + 1;
    String after = build.has("cursor") ? build.get("cursor").asText() : null;
    String viewTopic = config.eventsTopic(view.name());
    int partitions = config.kafka().partitions();
    List<ProducerRecord<String, byte[]>> records = new ArrayList<>();
    List<EntityStore.KeyedState> walked = store.writeFromStates(type, after, CHUNK, read -> {
      int seq = 0;
      for (EntityStore.KeyedState entity : read) {
        if (partitionOf(entity.key(), partitions) != source.partition()) {
          continue;  // a copy of another partition's entity, or another partition's own
        }
        Contributions.Contribution added = Contributions.built(view.definition(), target, type, entity.key(),
            plain(entity.entity().state()), source.partition(), chunk, seq++);
        if (added != null) {
          records.add(new ProducerRecord<>(viewTopic, added.rowKey(), added.value()));
        }
      }
      if (!read.isEmpty()) {
        build.put("cursor", read.get(read.size() - 1).key());
      }
      if (read.size() < CHUNK) {
        build.put("done", true);
        for (int partition = 0; partition < partitions; partition++) {
          records.add(new ProducerRecord<>(viewTopic, partition, ViewType.builtKey(partition),
              Contributions.buildDone(target, type, source.partition())));
        }
      }
      build.put("chunk", chunk);
      state.put("steps", outboxKey(state) + 1);
      return batchOf(view, source, state, records);
    });
    return new Chunk(outbox(source, view), outboxKey(state), records, changelogOf(view, source, state), walked.size());
  }

  private Chunk write(ViewType view, TopicPartition source, ObjectNode state,
                      List<ProducerRecord<String, byte[]>> records) {
    StoreBatch batch = batchOf(view, source, state, records);
    store.write(batch);
    return new Chunk(outbox(source, view), outboxKey(state), records, changelogOf(view, source, state), 0);
  }

  private StoreBatch batchOf(ViewType view, TopicPartition source, ObjectNode state,
                             List<ProducerRecord<String, byte[]>> records) {
    StoreBatch batch = new StoreBatch().putState(TYPE, key(view, source), stored(state));
    if (!records.isEmpty()) {
      TopicPartition outbox = outbox(source, view);
      batch.putOutbox(outbox.topic(), outbox.partition(), outboxKey(state), OutboxRecord.records(records));
    }
    return batch;
  }

  /** The build's state, and the marker after it: a restore takes what comes before a marker. */
  private List<ChangelogItem> changelogOf(ViewType view, TopicPartition source, ObjectNode state) {
    long next = store.nextOffset(source.topic(), source.partition()).orElse(0);
    return List.of(ChangelogItem.state(TYPE, key(view, source), stored(state)),
        ChangelogItem.nextOffset(source.topic(), source.partition(), next));
  }

  /**
   * Where a step's records wait in the build outbox until published: one more than the last step's,
   * over every version (a version's chunks count from 1 again).
   */
  static long outboxKey(ObjectNode state) {
    return state.path("steps").asLong(0);
  }

  /** The changelog of the build a build outbox publishes, as the store holds it now. */
  List<ChangelogItem> changelogOf(TopicPartition outbox) {
    TopicPartition source = sourceOf(outbox);
    String view = outbox.topic().substring(outbox.topic().indexOf(OUTBOX) + OUTBOX.length());
    String key = view + "@" + source;
    List<ChangelogItem> items = new ArrayList<>();
    StoredEntity stored = store.get(TYPE, key);
    if (stored != null) {
      items.add(ChangelogItem.state(TYPE, key, stored));
    }
    items.add(ChangelogItem.nextOffset(source.topic(), source.partition(),
        store.nextOffset(source.topic(), source.partition()).orElse(0)));
    return items;
  }

  private static StoredEntity stored(ObjectNode state) {
    return new StoredEntity(0, -1, null, Envelopes.toBytes(state));
  }

  private String typeOf(TopicPartition source) {
    for (String type : viewsByType.keySet()) {
      if (config.eventsTopic(type).equals(source.topic())) {
        return type;
      }
    }
    return null;
  }

  /** The events partition of an entity, as Kafka's default partitioner places its key. */
  private static int partitionOf(String key, int partitions) {
    return Utils.toPositive(Utils.murmur2(key.getBytes(StandardCharsets.UTF_8))) % partitions;
  }

  private static ObjectNode parse(byte[] state) {
    return (ObjectNode) plain(state);
  }

  private static JsonNode plain(byte[] state) {
    try {
      return Envelopes.parse(state);
    } catch (IOException e) {
      throw new IllegalStateException("a stored state is not JSON", e);
    }
  }
}
