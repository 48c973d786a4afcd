package io.kfold.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.config.NodeConfig;
import io.kfold.effects.EffectConfig;
import io.kfold.types.Envelopes;
import io.kfold.fold.FoldProgress;
import io.kfold.log.KafkaConsumerLoop;
import io.kfold.log.KafkaClients;
import io.kfold.log.Supervisor;
import io.kfold.view.ViewType;
import io.kfold.view.ViewVersion;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.MemberToRemove;
import org.apache.kafka.clients.admin.RemoveMembersFromConsumerGroupOptions;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.GroupIdNotFoundException;
import org.apache.kafka.common.errors.UnknownMemberIdException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.Collection;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Which node folds which partition, and where it answers: each node writes a claim (its URL, the
 * partitions it folds, and the group generation they were given in) to the compacted
 * {@code <app>.nodes} topic whenever its assignment changes, and reads everyone's claims. A node
 * whose claim a later generation has passed is dead ({@link ClusterView}): it keeps no partition,
 * and after a minute it leaves the view.
 *
 * <p>Claims are also the nodes' heartbeats: each node writes its claim again every half second. A
 * node that goes silent (killed, frozen, cut off) is removed from the fold's group and the workers'
 * groups at once by the first live node ({@link SilentNodes}), by its static member name, instead of
 * the groups waiting for its session to time out; and its open transaction is aborted by fencing its
 * transactional id, so that readers of the changes do not wait for the transaction to time out. A
 * node removed while still alive is a zombie that the group and its fenced transactions refuse (see
 * {@code FoldTransactions}); it joins again as a new member.
 *
 * <p>Its consumer runs on a thread of its own, as a loop under the node's {@link Supervisor}.
 */
public final class NodeDirectory implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(NodeDirectory.class);

  /** How long a node whose claim the group has moved past stays in view, shown as dead. */
  private static final Duration KEEP_DEAD = Duration.ofMinutes(1);

  /** One node's claim. */
  public record Claim(String node, String url, int generation, Set<String> partitions) {}

  private final NodeConfig config;
  /** This node's name, which is also its fold's static member name ({@code group.instance.id}). */
  private final String node;
  /** The fold's transactional id, written in claims so that the others can fence it; null without transactions. */
  private final String transactionalId;
  private final FoldProgress progress;
  private final ClusterView view;
  private final Supervisor supervisor;
  /** Keys of the topic's records that ask for a view's generation, not claims: {@code view:<name>}. */
  private static final String VIEW_KEY = "view:";

  private volatile String url;
  /** The views whose versions this node switches when the claims say one is complete everywhere. */
  private volatile Collection<ViewType> views = List.of();
  /** Per node, as its claim says: per partition of a view's rows it folds, the versions complete there. */
  private final Map<String, Map<String, Set<String>>> viewVersionsByNode = new ConcurrentHashMap<>();
  /** Per node, the transactional id its claim gives. */
  private final Map<String, String> transactionalIds = new ConcurrentHashMap<>();
  private KafkaProducer<String, byte[]> producer;
  private Admin admin;
  /** Removes silent nodes from the groups and fences them, off the directory's thread, which must go on beating. */
  private ExecutorService remover;
  private Supervisor.Running loop;
  private boolean closed;

  public NodeDirectory(NodeConfig config, String node, FoldProgress progress, Supervisor supervisor,
                       String transactionalId) {
    this(config, node, progress, supervisor, transactionalId, Clock.systemUTC());
  }

  NodeDirectory(NodeConfig config, String node, FoldProgress progress, Supervisor supervisor, String transactionalId,
                Clock clock) {
    this.config = config;
    this.node = node;
    this.transactionalId = transactionalId;
    this.progress = progress;
    this.supervisor = supervisor;
    this.view = new ClusterView(clock, KEEP_DEAD);
  }

  /** Blocks: run it on a worker thread. */
  public void start(String advertisedUrl) {
    this.url = advertisedUrl;
    producer = new KafkaProducer<>(KafkaClients.producer(config.kafka(), config.app() + "-directory"),
        new StringSerializer(), new ByteArraySerializer());
    admin = Admin.create(KafkaClients.admin(config.kafka(), config.app() + "-directory-admin"));
    remover = Executors.newSingleThreadExecutor(runnable -> {
      Thread thread = new Thread(runnable, "kfold-directory-remover");
      thread.setDaemon(true);
      return thread;
    });
    loop = supervisor.start("directory", new ClaimsLoop());
  }

  public String node() {
    return node;
  }

  /** The views this node keeps: their reads switch versions as the claims say (see ViewType). */
  public void keepViews(Collection<ViewType> kept) {
    this.views = List.copyOf(kept);
  }

  /**
   * Asks every node for the view's next generation ({@code POST /v1/_views/{view}/rebuild}): each
   * builds it from its stored states while the current version answers. Blocks: run it on a worker.
   */
  public ViewVersion requestRebuild(ViewType kept) throws Exception {
    ViewVersion next = new ViewVersion(kept.target().definition(), kept.target().generation() + 1);
    ObjectNode asked = JsonNodeFactory.instance.objectNode().put("version", next.toString());
    producer.send(new ProducerRecord<>(config.nodesTopic(), VIEW_KEY + kept.definition().name(), Envelopes.toBytes(asked)))
        .get(10, TimeUnit.SECONDS);
    kept.atLeastGeneration(next.generation());
    return kept.target();
  }

  /** In how many partitions of the view's rows the claims of their folding nodes say the version is complete. */
  public int partitionsComplete(ViewType kept, ViewVersion version) {
    int complete = 0;
    for (int partition = 0; partition < config.kafka().partitions(); partition++) {
      if (completeIn(kept, partition).contains(version.toString())) {
        complete++;
      }
    }
    return complete;
  }

  private Set<String> completeIn(ViewType kept, int partition) {
    String name = new TopicPartition(config.eventsTopic(kept.name()), partition).toString();
    return view.owner(name).map(owner -> viewVersionsByNode.getOrDefault(owner.node(), Map.of())
        .getOrDefault(name, Set.of())).orElse(Set.of());
  }

  /** Tells each view the versions complete in every partition of its rows, oldest first. */
  private void switchViews() {
    for (ViewType kept : views) {
      Set<String> everywhere = null;
      for (int partition = 0; partition < config.kafka().partitions() && (everywhere == null || !everywhere.isEmpty());
           partition++) {
        Set<String> here = completeIn(kept, partition);
        if (everywhere == null) {
          everywhere = new java.util.HashSet<>(here);
        } else {
          everywhere.retainAll(here);
        }
      }
      if (everywhere != null) {
        everywhere.stream().map(ViewVersion::parse).sorted().forEach(kept::completeEverywhere);
      }
    }
  }

  /** The claim of the live node that folds the partition, as far as the claims say; empty while none claims it. */
  public Optional<Claim> owner(TopicPartition partition) {
    return view.owner(partition.toString());
  }

  /**
   * The partitions this node keeps a warm copy of: for each partition the latest generation's nodes
   * claim, the {@code replicas} other nodes that rank highest for it (rendezvous hashing, so that
   * each node works out the same answer and a node that comes or goes moves few standbys).
   */
  public Set<TopicPartition> standbys(int replicas) {
    if (replicas == 0) {
      return Set.of();
    }
    List<Claim> live = view.latestGeneration();
    Set<TopicPartition> standbys = new HashSet<>();
    for (Claim owner : live) {
      for (String partition : owner.partitions()) {
        live.stream().filter(c -> !c.node().equals(owner.node()))
            .sorted(java.util.Comparator.comparingInt((Claim c) -> (c.node() + "/" + partition).hashCode() * 0x9E3779B9)
                .thenComparing(Claim::node))
            .limit(replicas)
            .filter(c -> c.node().equals(node))
            .forEach(c -> standbys.add(partitionOf(partition)));
      }
    }
    return standbys;
  }

  private static TopicPartition partitionOf(String name) {
    int dash = name.lastIndexOf('-');
    return new TopicPartition(name.substring(0, dash), Integer.parseInt(name.substring(dash + 1)));
  }

  /** The nodes in view, by name: each one's latest claim, and since when it is dead if it is. */
  public Map<String, ClusterView.Node> nodes() {
    return view.nodes();
  }

  /**
   * Publishes this node's claim whenever its partitions or generation change, and at least every
   * beat; reads everyone's, and has silent nodes removed.
   */
  private final class ClaimsLoop extends KafkaConsumerLoop<String, byte[]> {
    private Set<TopicPartition> claimed;
    private int claimedGeneration;
    private Map<TopicPartition, List<String>> claimedViews;
    private long nextBeat;
    private SilentNodes silentNodes;

    @Override
    public void open() {
      // Read from the beginning again after a restart: the compacted topic holds every claim.
      claimed = null;
      claimedGeneration = -2;
      claimedViews = null;
      silentNodes = new SilentNodes(node, Duration.ofMillis(config.kafka().sessionTimeoutMs()));
      consumer = new KafkaConsumer<>(KafkaClients.settings(config.kafka(), Map.of(
          ConsumerConfig.CLIENT_ID_CONFIG, config.app() + "-directory-reader",
          ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false)), new StringDeserializer(), new ByteArrayDeserializer());
      TopicPartition topic = new TopicPartition(config.nodesTopic(), 0);
      consumer.assign(List.of(topic));
      consumer.seekToBeginning(List.of(topic));
    }

    @Override
    public void runOnce() {
      Set<TopicPartition> folded = new HashSet<>(progress.lag().keySet());
      int generation = progress.generation();
      Map<TopicPartition, List<String>> viewVersions = new java.util.HashMap<>(progress.viewVersionsComplete());
      viewVersions.keySet().retainAll(folded);
      long now = System.currentTimeMillis();
      if (generation != claimedGeneration || !folded.equals(claimed) || !viewVersions.equals(claimedViews)
          || now >= nextBeat) {
        publish(folded, generation, viewVersions);
        claimed = folded;
        claimedGeneration = generation;
        claimedViews = viewVersions;
        nextBeat = now + SilentNodes.BEAT.toMillis();
      }
      for (ConsumerRecord<String, byte[]> record : consumer.poll(Duration.ofMillis(Math.min(200, nextBeat - now)))) {
        if (record.key().startsWith(VIEW_KEY)) {
          askedForGeneration(record);
        } else if (record.value() == null) {
          view.withdrawn(record.key());
          viewVersionsByNode.remove(record.key());
          transactionalIds.remove(record.key());
          silentNodes.withdrawn(record.key());
        } else {
          try {
            Instant written = Instant.ofEpochMilli(record.timestamp());
            view.claimed(decode(record.key(), record.value()), written);
            silentNodes.heard(record.key(), written, Instant.now());
          } catch (IOException e) {
            LOG.warn("skipping an unreadable claim of node {} at offset {}: {}", record.key(), record.offset(),
                e.toString());
          }
        }
      }
      for (SilentNodes.Silent silent : silentNodes.silent(Instant.now())) {
        remover.execute(() -> remove(silent.node(), silent.again()));
      }
      switchViews();
    }

    @Override
    public void close(boolean stopping) {
      closeConsumer(Duration.ofSeconds(5));
    }
  }

  /**
   * A node asked for a view's next generation: this node builds it too, if it has the same
   * definition (a changed definition starts its own generations).
   */
  private void askedForGeneration(ConsumerRecord<String, byte[]> record) {
    String name = record.key().substring(VIEW_KEY.length());
    try {
      if (record.value() == null) {
        return;
      }
      ViewVersion asked = ViewVersion.parse(Envelopes.parse(record.value()).path("version").asText());
      views.stream().filter(kept -> kept.definition().name().equals(name) && kept.ours(asked))
          .forEach(kept -> kept.atLeastGeneration(asked.generation()));
    } catch (IOException | IllegalArgumentException e) {
      LOG.warn("skipping an unreadable request for view {} at offset {}: {}", name, record.offset(), e.toString());
    }
  }

  /**
   * Removes a silent node from the fold's group and the workers' groups by its static member names,
   * so that they give its partitions to the live nodes now, and the first time fences its
   * transactional id, which aborts the transaction it left open. Both are harmless when the node is
   * gone already; {@code again}: the node is still silent, and a removal that failed is tried again.
   */
  private void remove(String silent, boolean again) {
    if (!again) {
      LOG.info("node {} went silent: removing it from the groups and fencing its transactions", silent);
    }
    removeMember(config.app(), silent);
    for (EffectConfig effect : config.effects()) {
      removeMember(config.effectGroup(effect.name()), silent + "-" + effect.name());
    }
    String fenced = transactionalIds.get(silent);
    if (fenced != null && !again) {
      Map<String, Object> conf = KafkaClients.transactionalPublisher(config.kafka(), config.app() + "-fencer", fenced);
      try (KafkaProducer<byte[], byte[]> fencer = new KafkaProducer<>(conf)) {
        fencer.initTransactions();
        LOG.info("fenced the transactions of node {}", silent);
      } catch (RuntimeException e) {
        LOG.warn("fencing the transactions of silent node {} failed; they time out instead: {}", silent, e.toString());
      }
    }
  }

  private void removeMember(String group, String member) {
    try {
      admin.removeMembersFromConsumerGroup(group,
              new RemoveMembersFromConsumerGroupOptions(List.of(new MemberToRemove(member))))
          .all().get(10, TimeUnit.SECONDS);
      LOG.info("removed silent node's member {} from group {}", member, group);
    } catch (ExecutionException e) {
      if (e.getCause() instanceof UnknownMemberIdException || e.getCause() instanceof GroupIdNotFoundException) {
        LOG.debug("member {} is not in group {}", member, group);
      } else {
        LOG.warn("removing silent member {} from group {} failed; its session times out instead: {}", member, group,
            e.getCause().toString());
      }
    } catch (TimeoutException e) {
      LOG.warn("removing silent member {} from group {} timed out; its session times out instead", member, group);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private void publish(Set<TopicPartition> partitions, int generation, Map<TopicPartition, List<String>> viewVersions) {
    ObjectNode claim = JsonNodeFactory.instance.objectNode().put("url", url).put("generation", generation)
        .put("transactionalId", transactionalId);
    ArrayNode list = claim.putArray("partitions");
    partitions.stream().map(TopicPartition::toString).sorted().forEach(list::add);
    ObjectNode complete = claim.putObject("viewVersions");
    viewVersions.forEach((partition, versions) -> versions.forEach(complete.withArray(partition.toString())::add));
    producer.send(new ProducerRecord<>(config.nodesTopic(), node, Envelopes.toBytes(claim)), (metadata, error) -> {
      if (error != null) {
        LOG.warn("publishing this node's partitions failed; the next change publishes them again: {}", error.toString());
      }
    });
  }

  private Claim decode(String node, byte[] value) throws IOException {
    JsonNode json = Envelopes.parse(value);
    Map<String, Set<String>> complete = new java.util.HashMap<>();
    json.path("viewVersions").fields().forEachRemaining(partition -> {
      Set<String> versions = new HashSet<>();
      partition.getValue().forEach(version -> versions.add(version.asText()));
      complete.put(partition.getKey(), versions);
    });
    viewVersionsByNode.put(node, complete);
    if (json.hasNonNull("transactionalId")) {
      transactionalIds.put(node, json.path("transactionalId").asText());
    }
    Set<String> partitions = new HashSet<>();
    json.path("partitions").forEach(p -> partitions.add(p.asText()));
    return new Claim(node, json.path("url").asText(), json.path("generation").asInt(-1), Set.copyOf(partitions));
  }

  /** Withdraws this node's claim and stops. */
  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    try {
      if (loop != null) {
        loop.stop(Duration.ofSeconds(10));
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    if (remover != null) {
      remover.shutdownNow();
    }
    if (admin != null) {
      admin.close(Duration.ofSeconds(5));
    }
    if (producer != null) {
      producer.send(new ProducerRecord<>(config.nodesTopic(), node, null));
      producer.close(Duration.ofSeconds(10));
    }
  }
}
