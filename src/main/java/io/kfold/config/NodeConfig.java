package io.kfold.config;

import com.fasterxml.jackson.databind.JsonNode;
import io.kfold.auth.AuthConfig;
import io.kfold.config.ConfigKeys;
import io.kfold.config.ConfigSource;
import io.kfold.effects.EffectConfig;
import io.kfold.entity.IndexDefinition;
import io.kfold.log.KafkaClients;
import io.kfold.view.ConfiguredView;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Pattern;

/**
 * The whole configuration of a node, built once by {@link ConfigSource} from the bundled defaults, the file named by
 * {@code KFOLD_CONFIG} and {@code KFOLD_*} environment variables, then passed through constructors.
 */
public record NodeConfig(String app, Path dataDir, Http http, Kafka kafka, Fold fold, Writes writes,
                          List<TypeConfig> types, List<EffectConfig> effects, List<ViewConfig> views, AuthConfig auth,
                          Plugins plugins, EventBus eventBus, Store store) {

  /** A node whose event bus is its own Vert.x instance's only. */
  public NodeConfig(String app, Path dataDir, Http http, Kafka kafka, Fold fold, Writes writes, List<TypeConfig> types,
                     List<EffectConfig> effects, List<ViewConfig> views, AuthConfig auth, Plugins plugins) {
    this(app, dataDir, http, kafka, fold, writes, types, effects, views, auth, plugins, EventBus.LOCAL);
  }

  /** A node whose store has the default memory budget. */
  public NodeConfig(String app, Path dataDir, Http http, Kafka kafka, Fold fold, Writes writes, List<TypeConfig> types,
                     List<EffectConfig> effects, List<ViewConfig> views, AuthConfig auth, Plugins plugins,
                     EventBus eventBus) {
    this(app, dataDir, http, kafka, fold, writes, types, effects, views, auth, plugins, eventBus, Store.DEFAULT);
  }

  /**
   * @param advertisedUrl how other nodes reach this one; empty: http://host:port, https with TLS
   * @param forwardWaitMs how long a request for an entity of another node waits for its owner to be known
   * @param streamMaxPendingBytes the most a change stream holds for a client that reads slowly before it is ended
   * @param accessLog     one line per request on the logger {@code io.kfold.access}
   */
  public record Http(String host, int port, int maxBodyBytes, long maxWaitMs, String advertisedUrl, long forwardWaitMs,
                     int streamMaxPendingBytes, Tls tls, boolean accessLog) {
    public Http(String host, int port, int maxBodyBytes, long maxWaitMs, String advertisedUrl, long forwardWaitMs,
                int streamMaxPendingBytes, Tls tls) {
      this(host, port, maxBodyBytes, maxWaitMs, advertisedUrl, forwardWaitMs, streamMaxPendingBytes, tls, false);
    }

    public Http(String host, int port, int maxBodyBytes, long maxWaitMs, String advertisedUrl, long forwardWaitMs,
                int streamMaxPendingBytes) {
      this(host, port, maxBodyBytes, maxWaitMs, advertisedUrl, forwardWaitMs, streamMaxPendingBytes, Tls.OFF);
    }

    /** The scheme of this node's URLs: https when it serves TLS. */
    public String scheme() {
      return tls.enabled() ? "https" : "http";
    }
  }

  /**
   * TLS of the HTTP API, from PEM files; off while {@code certificate} and {@code key} are empty.
   *
   * @param certificate   the server's certificate chain, its own certificate first
   * @param key           the certificate's private key (PKCS#8, or PKCS#1 for RSA)
   * @param trust         the CA certificates that this node trusts when it sends a request to another node over
   *                      https; empty: the JVM's default trust
   * @param reloadCheckMs how often the certificate and key files are read again for a new certificate
   */
  public record Tls(String certificate, String key, String trust, long reloadCheckMs) {
    public static final Tls OFF = new Tls("", "", "", 10_000);

    public boolean enabled() {
      return !certificate.isEmpty();
    }
  }

  /**
   * @param sessionTimeoutMs how long the group waits for a silent node before giving its partitions to others
   * @param properties       settings of the user's for every Kafka client kfold creates (security, network)
   */
  public record Kafka(String bootstrap, int partitions, short replicationFactor, int localPort, String groupInstanceId,
                      int sessionTimeoutMs, Map<String, String> properties) {
    public Kafka(String bootstrap, int partitions, short replicationFactor, int localPort, String groupInstanceId,
                 int sessionTimeoutMs) {
      this(bootstrap, partitions, replicationFactor, localPort, groupInstanceId, sessionTimeoutMs, Map.of());
    }

    public boolean embedded() {
      return bootstrap.isBlank();
    }
  }

  /**
   * @param cacheEntries    parsed entity states kept in memory between polls
   * @param standbyReplicas other nodes that keep a warm copy of each partition from its changelog
   * @param threads         partitions of one poll folded side by side; 0 for the number of cores
   * @param transactions    each poll published in a Kafka transaction that fences a node the group replaced
   */
  public record Fold(int maxPollRecords, int cacheEntries, int standbyReplicas, int threads, boolean transactions) {}

  /**
   * @param timeoutMs           how long a write waits for the fold's verdict
   * @param maxEvents           events in one append request
   * @param idempotencyWindowMs how long an idempotency key is remembered
   */
  public record Writes(long timeoutMs, int maxEvents, long idempotencyWindowMs) {}

  /**
   * @param memoryMb the store's native memory (RocksDB's block cache, index and filter blocks, memtables), in MiB
   */
  public record Store(int memoryMb) {
    public static final Store DEFAULT = new Store(256);

    public long memoryBytes() {
      return memoryMb * 1024L * 1024;
    }
  }

  /**
   * An entity type: {@code fold: merge}, or {@code class:} naming a Java {@code EntityType}.
   *
   * @param indexes the secondary indexes the configuration declares, besides those of a Java type
   */
  public record TypeConfig(String name, String fold, String className, List<IndexDefinition> indexes) {
    public TypeConfig(String name, String fold, String className) {
      this(name, fold, className, List.of());
    }
  }

  /**
   * A view: declared ({@code view} holds it), or {@code class:} naming a Java
   * {@link io.kfold.entity.ViewDefinition} with a public no-argument constructor ({@code view} is null).
   */
  public record ViewConfig(String name, String className, ConfiguredView view) {}

  /**
   * Where the jars of the user's own Java types and views are: {@code dir}, or the folder
   * {@code plugins} of the working directory when it is empty.
   */
  public record Plugins(String dir) {
    public static final Plugins DEFAULT = new Plugins("");

    public Path folder() {
      return Path.of(dir.isEmpty() ? "plugins" : dir);
    }

    /** A folder the configuration names must exist; the default one may be missing. */
    public boolean configured() {
      return !dir.isEmpty();
    }
  }

  /** The event bus: local to this Vert.x instance, or shared with other JVMs through a cluster. */
  public record EventBus(Cluster cluster) {
    public static final EventBus LOCAL = new EventBus(Cluster.OFF);

    /**
     * A Vert.x cluster over Hazelcast: members found over TCP/IP at {@code members} (never by multicast),
     * Hazelcast's membership on {@code host:port}, the event bus's own connections on {@code host} at a
     * port it picks.
     *
     * @param name the Hazelcast cluster name; only members of the same name join each other
     * @param tls  mutual TLS of the event bus's connections; required unless {@code host} is a loopback address
     */
    public record Cluster(boolean enabled, String host, int port, List<String> members, String name, ClusterTls tls) {
      public static final Cluster OFF = new Cluster(false, "127.0.0.1", 5701, List.of(), "", ClusterTls.OFF);
    }

    /**
     * PEM files: this member's certificate and key, presented to the others and asked of them, and the
     * CA certificates a member's certificate must be signed by; off while all three are empty.
     */
    public record ClusterTls(String certificate, String key, String trust) {
      public static final ClusterTls OFF = new ClusterTls("", "", "");

      public boolean enabled() {
        return !certificate.isEmpty();
      }
    }
  }

  public static final Pattern TYPE_NAME = Pattern.compile("[a-z][a-z0-9-]{0,62}");
  private static final Pattern APP_ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_-]{0,62}");

  /** Every key of the configuration; a section that gains a field adds it here, or the file cannot use it. */
  static final ConfigKeys.Section KEYS = new ConfigKeys.Section(Map.ofEntries(
      Map.entry("app", ConfigKeys.VALUE),
      Map.entry("dataDir", ConfigKeys.VALUE),
      Map.entry("http", new ConfigKeys.Section(Map.of("host", ConfigKeys.VALUE, "port", ConfigKeys.VALUE,
          "maxBodyBytes", ConfigKeys.VALUE, "maxWaitMs", ConfigKeys.VALUE, "advertisedUrl", ConfigKeys.VALUE,
          "forwardWaitMs", ConfigKeys.VALUE, "streamMaxPendingBytes", ConfigKeys.VALUE, "accessLog", ConfigKeys.VALUE,
          "tls", ConfigKeys.values("certificate", "key", "trust", "reloadCheckMs")))),
      Map.entry("kafka", new ConfigKeys.Section(Map.of("bootstrap", ConfigKeys.VALUE, "partitions", ConfigKeys.VALUE,
          "replicationFactor", ConfigKeys.VALUE, "localPort", ConfigKeys.VALUE, "groupInstanceId", ConfigKeys.VALUE,
          "sessionTimeoutMs", ConfigKeys.VALUE, "properties", ConfigKeys.PROPERTIES))),
      Map.entry("fold", ConfigKeys.values("maxPollRecords", "cacheEntries", "standbyReplicas", "threads", "transactions")),
      Map.entry("writes", ConfigKeys.values("timeoutMs", "maxEvents", "idempotencyWindowMs")),
      Map.entry("store", ConfigKeys.values("memoryMb")),
      Map.entry("types", new ConfigKeys.Listed(new ConfigKeys.Section(Map.of("name", ConfigKeys.VALUE, "fold", ConfigKeys.VALUE,
          "class", ConfigKeys.VALUE, "indexes", new ConfigKeys.Listed(ConfigKeys.values("name", "path", "kind")))))),
      Map.entry("effects", new ConfigKeys.Named(EffectConfig.KEYS)),
      Map.entry("auth", AuthConfig.KEYS),
      Map.entry("plugins", ConfigKeys.values("dir")),
      Map.entry("eventBus", new ConfigKeys.Section(Map.of("cluster", new ConfigKeys.Section(Map.of(
          "enabled", ConfigKeys.VALUE, "host", ConfigKeys.VALUE, "port", ConfigKeys.VALUE, "members", ConfigKeys.VALUE,
          "name", ConfigKeys.VALUE, "tls", ConfigKeys.values("certificate", "key", "trust")))))),
      Map.entry("views", new ConfigKeys.Listed(new ConfigKeys.Section(Map.of("name", ConfigKeys.VALUE, "class", ConfigKeys.VALUE,
          "from", ConfigKeys.VALUE, "key", ConfigKeys.VALUE, "where", ConfigKeys.FREE,
          "fields", new ConfigKeys.Named(ConfigKeys.values(ConfiguredView.Aggregate.configNames()
              .toArray(String[]::new)))))))));

  /** KFOLD_* variables that kfold reads for another purpose than a key (the log format: the logging configuration's). */
  static final Set<String> NOT_KEYS = Set.of("KFOLD_CONFIG", "KFOLD_LOG_FORMAT");

  /**
   * Reads the configuration: the bundled defaults, the file named by {@code KFOLD_CONFIG} over them,
   * the {@code KFOLD_*} variables over both, references to files and variables resolved.
   */
  public static NodeConfig load(Map<String, String> env) {
    return from(ConfigSource.read(env));
  }

  /** The typed configuration of what {@code source} read; a message about a value never holds a secret. */
  public static NodeConfig from(ConfigSource source) {
    try {
      return from(source.tree());
    } catch (IllegalArgumentException e) {
      String scrubbed = source.scrub(e.getMessage());
      if (scrubbed.equals(e.getMessage())) {
        throw e;
      }
      throw new IllegalArgumentException(scrubbed);  // without its cause, whose message may quote the secret
    }
  }

  static NodeConfig from(JsonNode tree) {
    String app = text(tree, "app");
    if (!APP_ID.matcher(app).matches()) {
      throw invalid("app", app, "letters, digits, '_' and '-', at most 63");
    }
    JsonNode http = section(tree, "http");
    JsonNode kafka = section(tree, "kafka");
    List<TypeConfig> types = new ArrayList<>();
    for (JsonNode type : tree.path("types")) {
      String name = text(type, "name");
      if (!TYPE_NAME.matcher(name).matches()) {
        throw invalid("types.name", name, "lower-case letters, digits and '-', starting with a letter");
      }
      String className = type.path("class").asText("");
      String fold = type.path("fold").asText(className.isEmpty() ? "" : "java");
      if (!fold.equals("merge") && !(fold.equals("java") && !className.isEmpty())) {
        throw invalid("types." + name + ".fold", fold, "'merge', or 'java' with a 'class'");
      }
      types.add(new TypeConfig(name, fold, className, indexes(name, type.path("indexes"))));
    }
    List<EffectConfig> effects = new ArrayList<>();
    for (Iterator<Map.Entry<String, JsonNode>> it = tree.path("effects").fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> worker = it.next();
      if (!worker.getValue().path("enabled").asBoolean(true)) {
        continue;
      }
      effects.add(EffectConfig.from(worker.getKey(), worker.getValue()));
    }
    return new NodeConfig(app, Path.of(text(tree, "dataDir")),
        new Http(text(http, "host"), intIn(http, "port", 0, 65535), intIn(http, "maxBodyBytes", 1, Integer.MAX_VALUE),
            intIn(http, "maxWaitMs", 0, Integer.MAX_VALUE), http.path("advertisedUrl").asText(""),
            intIn(http, "forwardWaitMs", 0, Integer.MAX_VALUE), intIn(http, "streamMaxPendingBytes", 1024, Integer.MAX_VALUE),
            tls(http.path("tls")), bool(http, "accessLog")),
        new Kafka(tree.path("kafka").path("bootstrap").asText(""), intIn(kafka, "partitions", 1, 10_000),
            (short) intIn(kafka, "replicationFactor", 1, 100), intIn(kafka, "localPort", 0, 65535),
            kafka.path("groupInstanceId").asText(""), intIn(kafka, "sessionTimeoutMs", 1000, 3_600_000),
            kafkaProperties(kafka.path("properties"))),
        new Fold(intIn(section(tree, "fold"), "maxPollRecords", 1, 1_000_000),
            intIn(section(tree, "fold"), "cacheEntries", 0, 100_000_000),
            intIn(section(tree, "fold"), "standbyReplicas", 0, 100),
            intIn(section(tree, "fold"), "threads", 0, 1024),
            bool(section(tree, "fold"), "transactions")),
        new Writes(intIn(section(tree, "writes"), "timeoutMs", 1, Integer.MAX_VALUE),
            intIn(section(tree, "writes"), "maxEvents", 1, 10_000),
            longIn(section(tree, "writes"), "idempotencyWindowMs", 1, Long.MAX_VALUE)),
        List.copyOf(types), List.copyOf(effects), views(tree.path("views")),
        AuthConfig.from(tree.path("auth"), text(http, "host")),
        new Plugins(tree.path("plugins").path("dir").asText("").trim()),
        new EventBus(cluster(tree.path("eventBus").path("cluster"), app)),
        new Store(intIn(section(tree, "store"), "memoryMb", 16, 1_048_576)));
  }

  /**
   * {@code eventBus.cluster}. The clustered event bus carries commands with no credentials: on an
   * address other machines reach it is refused unless its connections are mutual TLS.
   */
  private static EventBus.Cluster cluster(JsonNode cluster, String app) {
    if (cluster.isMissingNode() || cluster.isNull()) {
      return EventBus.Cluster.OFF;
    }
    boolean enabled = bool(cluster, "enabled");
    String host = cluster.path("host").asText("").trim();
    // An IP address: Hazelcast binds to the interface that has it.
    if (!host.matches("\\d{1,3}(\\.\\d{1,3}){3}|[0-9a-fA-F:]*:[0-9a-fA-F:]*") || host.equals("0.0.0.0")
        || host.matches("[0:]+")) {
      throw at("eventBus.cluster.host", "'" + host + "': the one IP address of this machine that its cluster traffic"
          + " uses, such as 127.0.0.1 or the address of its private network, not a host name and not every address");
    }
    int port = intIn(cluster, "port", 1, 65535);
    List<String> members = new ArrayList<>();
    JsonNode declared = cluster.path("members");
    // A list in a file; a variable (KFOLD_EVENT_BUS_CLUSTER_MEMBERS) gives them separated by commas.
    for (JsonNode member : declared.isArray() ? declared : List.of(declared)) {
      for (String one : member.asText("").split(",")) {
        String trimmed = one.trim();
        if (trimmed.isEmpty()) {
          continue;
        }
        int colon = trimmed.lastIndexOf(':');
        if (colon <= 0 || !trimmed.substring(colon + 1).matches("\\d{1,5}")
            || Integer.parseInt(trimmed.substring(colon + 1)) > 65535) {
          throw at("eventBus.cluster.members", "'" + trimmed + "' is not host:port (the Hazelcast port of a member,"
              + " such as 10.0.0.7:5701)");
        }
        members.add(trimmed);
      }
    }
    JsonNode tlsNode = cluster.path("tls");
    EventBus.ClusterTls tls = new EventBus.ClusterTls(tlsNode.path("certificate").asText("").trim(),
        tlsNode.path("key").asText("").trim(), tlsNode.path("trust").asText("").trim());
    boolean anyTls = !tls.certificate().isEmpty() || !tls.key().isEmpty() || !tls.trust().isEmpty();
    if (anyTls && (tls.certificate().isEmpty() || tls.key().isEmpty() || tls.trust().isEmpty())) {
      throw at("eventBus.cluster.tls", "mutual TLS needs all three PEM files: 'certificate' and 'key' (this member's),"
          + " 'trust' (the CA that signs every member's certificate)");
    }
    if (enabled && !tls.enabled() && !AuthConfig.loopback(host)) {
      throw at("eventBus.cluster.host", "is '" + host + "', which is not a loopback address, and the clustered event bus"
          + " has no TLS: its messages carry commands without credentials, so anyone who reaches the address could"
          + " write to every entity. Set eventBus.cluster.tls (certificate, key and trust, PEM: mutual TLS between the"
          + " members), or keep the cluster on 127.0.0.1");
    }
    String name = cluster.path("name").asText("").trim();
    return new EventBus.Cluster(enabled, host, port, List.copyOf(members), name.isEmpty() ? app : name, tls);
  }

  /**
   * The views: each checked whole here, so that a bad one stops the start with its place named
   * ({@code views[0].fields.spent}); a Java view is checked when its class is loaded.
   */
  private static List<ViewConfig> views(JsonNode declared) {
    if (declared.isMissingNode() || declared.isNull()) {
      return List.of();
    }
    if (!declared.isArray()) {
      throw invalid("views", declared.toString(), "a list of views");
    }
    List<ViewConfig> views = new ArrayList<>();
    Set<String> names = new HashSet<>();
    for (int i = 0; i < declared.size(); i++) {
      JsonNode view = declared.get(i);
      String at = "views[" + i + "]";
      if (!view.isObject()) {
        throw at(at, "a view is {name, from, key, where, fields} or {name, class}, not " + view);
      }
      String name = view.path("name").asText("");
      if (!ConfiguredView.NAME.matcher(name).matches()) {
        throw at(at + ".name", "'" + name + "' is not a view name: lower-case letters, digits and '-', starting with"
            + " a letter, at most 63 (it is part of topic names and URLs)");
      }
      if (!names.add(name)) {
        throw at(at + ".name", "the view '" + name + "' is declared twice");
      }
      String className = view.path("class").asText("");
      if (!className.isEmpty()) {
        for (String part : List.of("from", "key", "where", "fields")) {
          if (view.has(part)) {
            throw at(at + "." + part, "a view with a 'class' is defined by its class; remove '" + part + "'");
          }
        }
        views.add(new ViewConfig(name, className, null));
        continue;
      }
      List<String> from = new ArrayList<>();
      JsonNode fromNode = view.path("from");
      if (fromNode.isMissingNode() || fromNode.isNull() || fromNode.isEmpty() && fromNode.isArray()) {
        throw at(at + ".from", "name the entity types whose entities count in the view, such as [orders]");
      }
      for (JsonNode type : fromNode.isArray() ? fromNode : List.of(fromNode)) {
        if (!type.isTextual()) {
          throw at(at + ".from", "expected the names of entity types, not " + type);
        }
        if (from.contains(type.asText())) {
          throw at(at + ".from", "the type '" + type.asText() + "' is named twice");
        }
        from.add(type.asText());
      }
      String key = view.path("key").asText("");
      try {
        ConfiguredView.pointer(key);
      } catch (IllegalArgumentException e) {
        throw at(at + ".key", e.getMessage());
      }
      Map<String, List<JsonNode>> where = new LinkedHashMap<>();
      JsonNode filter = view.path("where");
      if (!filter.isMissingNode() && !filter.isNull() && !filter.isObject()) {
        throw at(at + ".where", "expected pointers and their allowed values, such as {/status: [paid, shipped]}");
      }
      for (Iterator<Map.Entry<String, JsonNode>> it = filter.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> allowed = it.next();
        String place = at + ".where." + allowed.getKey();
        try {
          ConfiguredView.pointer(allowed.getKey());
        } catch (IllegalArgumentException e) {
          throw at(place, e.getMessage());
        }
        List<JsonNode> values = new ArrayList<>();
        (allowed.getValue().isArray() ? allowed.getValue() : List.of(allowed.getValue())).forEach(values::add);
        for (JsonNode value : values) {
          if (!value.isValueNode() || value.isNull()) {
            throw at(place, "allows " + value + "; the allowed values are strings, numbers and booleans");
          }
        }
        where.put(allowed.getKey(), values);
      }
      List<ConfiguredView.Field> fields = new ArrayList<>();
      JsonNode declaredFields = view.path("fields");
      if (!declaredFields.isObject() || declaredFields.isEmpty()) {
        throw at(at + ".fields", "expected the fields by name, such as {orders: count, spent: {sum: /total}}");
      }
      for (Iterator<Map.Entry<String, JsonNode>> it = declaredFields.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> field = it.next();
        fields.add(field(at + ".fields." + field.getKey(), field.getKey(), field.getValue()));
      }
      try {
        views.add(new ViewConfig(name, "", new ConfiguredView(name, from, key, where, fields)));
      } catch (IllegalArgumentException e) {
        throw at(at, e.getMessage());
      }
    }
    return List.copyOf(views);
  }

  /**
   * The types that views and workers name must be among {@code known}, the node's types. Checked
   * when they are known, at start and by {@code --check-config}, not when the file is read: a type
   * may come from a plugin jar or be given in code.
   */
  public void checkTypeNames(Set<String> known) {
    if (known.isEmpty()) {
      throw new IllegalArgumentException("configuration: 'types' must declare at least one entity type"
          + " (or the node be given one in code)");
    }
    Set<String> sorted = new TreeSet<>(known);
    for (int i = 0; i < views.size(); i++) {
      ConfiguredView view = views.get(i).view();
      for (String type : view == null ? List.<String>of() : view.from()) {
        if (!known.contains(type)) {
          throw at("views[" + i + "].from", "unknown type \"" + type + "\" — did you mean '"
              + ConfigKeys.nearest(type, sorted) + "'? The declared types are " + sorted);
        }
      }
    }
    for (EffectConfig effect : effects) {
      for (String entity : effect.entities()) {
        if (!known.contains(entity)) {
          throw invalid("effects." + effect.name() + ".entities", entity, "one of the declared types " + sorted);
        }
      }
      if (effect.target() instanceof EffectConfig.CommandTarget command && !known.contains(command.entity())) {
        throw invalid("effects." + effect.name() + ".target.entity", command.entity(),
            "one of the declared types " + sorted);
      }
    }
  }

  /** A field: {@code count}, or one aggregate of a pointer ({@code {sum: /total}}). */
  private static ConfiguredView.Field field(String at, String name, JsonNode declared) {
    String aggregateName;
    String path = null;
    if (declared.isTextual()) {
      aggregateName = declared.asText();
    } else if (declared.isObject() && declared.size() == 1) {
      Map.Entry<String, JsonNode> only = declared.fields().next();
      aggregateName = only.getKey();
      path = only.getValue().asText("");
    } else {
      throw at(at, "expected 'count' or one aggregate of a pointer, such as {sum: /total}; not " + declared);
    }
    ConfiguredView.Aggregate aggregate = ConfiguredView.Aggregate.named(aggregateName);
    List<String> known = ConfiguredView.Aggregate.configNames();
    if (aggregate == null) {
      throw at(at, "unknown aggregate '" + aggregateName + "' — did you mean '" + ConfigKeys.nearest(aggregateName, known)
          + "'? The aggregates are " + known);
    }
    if (aggregate.takesPointer() && path == null) {
      throw at(at, "'" + aggregateName + "' aggregates the values at a pointer: write {" + aggregateName
          + ": /path}");
    }
    try {
      return new ConfiguredView.Field(name, aggregate, path);
    } catch (IllegalArgumentException e) {
      throw at(at, e.getMessage());
    }
  }

  /** {@code http.tls}: both files or neither; whether they can be read and match is checked when the node starts. */
  private static Tls tls(JsonNode tls) {
    if (tls.isMissingNode() || tls.isNull()) {
      return Tls.OFF;
    }
    String certificate = tls.path("certificate").asText("").trim();
    String key = tls.path("key").asText("").trim();
    if (certificate.isEmpty() != key.isEmpty()) {
      throw at("http.tls", "TLS needs both 'certificate' and 'key' (PEM files); "
          + (certificate.isEmpty() ? "'certificate'" : "'key'") + " is empty");
    }
    long reloadCheckMs = tls.has("reloadCheckMs") ? longIn(tls, "reloadCheckMs", 100, 86_400_000) : Tls.OFF.reloadCheckMs();
    return new Tls(certificate, key, tls.path("trust").asText("").trim(), reloadCheckMs);
  }

  private static IllegalArgumentException at(String place, String problem) {
    return new IllegalArgumentException("configuration: '" + place + "': " + problem);
  }

  /**
   * {@code kafka.properties}: Kafka client settings by their Kafka names. A name no client knows is a
   * typo (Kafka would only warn), and a setting kfold's guarantees rest on is refused with the reason.
   */
  private static Map<String, String> kafkaProperties(JsonNode declared) {
    if (declared.isMissingNode() || declared.isNull()) {
      return Map.of();
    }
    if (!declared.isObject()) {
      throw at("kafka.properties", "expected Kafka client settings by name, such as {security.protocol: SASL_SSL}");
    }
    Map<String, String> properties = new TreeMap<>();
    List<String> problems = new ArrayList<>();
    for (Iterator<Map.Entry<String, JsonNode>> it = declared.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> property = it.next();
      String name = property.getKey();
      String at = "'kafka.properties." + name + "'";
      if (KafkaClients.RESERVED.containsKey(name)) {
        problems.add(at + " is kfold's to set: " + KafkaClients.RESERVED.get(name));
      } else if (!KafkaClients.KNOWN.contains(name)) {
        problems.add(at + " is no setting of a Kafka producer, consumer or admin client — did you mean 'kafka.properties."
            + ConfigKeys.nearest(name, KafkaClients.KNOWN) + "'?");
      } else if (!property.getValue().isValueNode() || property.getValue().isNull()) {
        problems.add(at + " must be a value");  // the value itself is not quoted: it may be a secret
      } else {
        properties.put(name, property.getValue().asText());
      }
    }
    if (!problems.isEmpty()) {
      throw new ConfigSource.Problems("configuration", problems);
    }
    return Collections.unmodifiableMap(properties);
  }

  /** The indexes a type declares: {@code [{name, path, kind}]}, kind {@code string} (default) or {@code number}. */
  private static List<IndexDefinition> indexes(String type, JsonNode declared) {
    if (declared.isMissingNode() || declared.isNull()) {
      return List.of();
    }
    if (!declared.isArray()) {
      throw invalid("types." + type + ".indexes", declared.toString(), "a list of {name, path, kind}");
    }
    List<IndexDefinition> indexes = new ArrayList<>();
    Set<String> names = new HashSet<>();
    for (int i = 0; i < declared.size(); i++) {
      JsonNode index = declared.get(i);
      String at = "types." + type + ".indexes[" + i + "]";
      try {
        IndexDefinition definition = new IndexDefinition(index.path("name").asText(""), index.path("path").asText(""),
            IndexDefinition.Kind.named(index.path("kind").asText("string")));
        if (!names.add(definition.name())) {
          throw new IllegalArgumentException("index name '" + definition.name() + "' is declared twice");
        }
        indexes.add(definition);
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("configuration: '" + at + "': " + e.getMessage(), e);
      }
    }
    return List.copyOf(indexes);
  }

  public NodeConfig withBootstrap(String bootstrap) {
    return withKafka(new Kafka(bootstrap, kafka.partitions, kafka.replicationFactor, kafka.localPort,
        kafka.groupInstanceId, kafka.sessionTimeoutMs, kafka.properties));
  }

  /** The same, with {@code kafka.groupInstanceId} set to {@code groupInstanceId}. */
  public NodeConfig withGroupInstanceId(String groupInstanceId) {
    return withKafka(new Kafka(kafka.bootstrap, kafka.partitions, kafka.replicationFactor, kafka.localPort,
        groupInstanceId, kafka.sessionTimeoutMs, kafka.properties));
  }

  /** The same, with {@code properties} as the settings of every Kafka client instead of {@code kafka.properties}. */
  public NodeConfig withKafkaProperties(Map<String, String> properties) {
    return withKafka(new Kafka(kafka.bootstrap, kafka.partitions, kafka.replicationFactor, kafka.localPort,
        kafka.groupInstanceId, kafka.sessionTimeoutMs, Map.copyOf(properties)));
  }

  private NodeConfig withKafka(Kafka changed) {
    return new NodeConfig(app, dataDir, http, changed, fold, writes, types, effects, views, auth, plugins, eventBus, store);
  }

  /** A view's folded type ({@code _view.<name>}) has the topics {@code <app>.view.<name>.*}; its events are contributions. */
  public String eventsTopic(String type) {
    return type.startsWith(VIEW_TYPE_PREFIX) ? viewTopic(type, "contributions") : app + "." + type + ".events";
  }

  public String changesTopic(String type) {
    return type.startsWith(VIEW_TYPE_PREFIX) ? viewTopic(type, "changes") : app + "." + type + ".changes";
  }

  /** The compacted copy of the store's items of a type, from which another node restores a partition. */
  public String changelogTopic(String type) {
    return type.startsWith(VIEW_TYPE_PREFIX) ? viewTopic(type, "changelog") : app + "." + type + ".changelog";
  }

  public String deadLetterTopic(String type) {
    return type.startsWith(VIEW_TYPE_PREFIX) ? viewTopic(type, "dlq") : app + "." + type + ".dlq";
  }

  /** Starts the name of a view's folded type; no user type's name can. */
  private static final String VIEW_TYPE_PREFIX = io.kfold.view.ViewType.PREFIX;

  private String viewTopic(String type, String kind) {
    return app + ".view." + type.substring(VIEW_TYPE_PREFIX.length()) + "." + kind;
  }

  /** Where a side-effect worker parks the events it could not deliver. */
  public String effectDeadLetterTopic(String worker) {
    return app + ".effects." + worker + ".dlq";
  }

  /** The compacted topic where each node says which partitions it folds and where it answers. */
  public String nodesTopic() {
    return app + ".nodes";
  }

  /** The consumer group of a side-effect worker on the changes topics. */
  public String effectGroup(String worker) {
    return app + ".effects." + worker;
  }

  /** A worker's {@code group.instance.id} in its group: the fold's, and the worker's name; empty without. */
  public String workerInstanceId(String worker) {
    return kafka.groupInstanceId.isBlank() ? "" : kafka.groupInstanceId + "-" + worker;
  }

  private static JsonNode section(JsonNode tree, String name) {
    JsonNode node = tree.path(name);
    if (!node.isObject()) {
      throw new IllegalArgumentException("configuration: section '" + name + "' is missing");
    }
    return node;
  }

  private static String text(JsonNode node, String field) {
    JsonNode value = node.path(field);
    if (!value.isValueNode() || value.asText().isBlank()) {
      throw new IllegalArgumentException("configuration: '" + field + "' is missing or empty");
    }
    return value.asText();
  }

  private static boolean bool(JsonNode node, String field) {
    String raw = node.path(field).asText("");
    if (!raw.equals("true") && !raw.equals("false")) {
      throw invalid(field, raw, "true or false");
    }
    return Boolean.parseBoolean(raw);
  }

  private static int intIn(JsonNode node, String field, int min, int max) {
    return (int) longIn(node, field, min, max);
  }

  private static long longIn(JsonNode node, String field, long min, long max) {
    String raw = node.path(field).asText("");
    try {
      long value = Long.parseLong(raw.trim());
      if (value >= min && value <= max) {
        return value;
      }
    } catch (NumberFormatException e) {
      // reported below
    }
    throw invalid(field, raw, "a whole number from " + min + " to " + max);
  }

  private static IllegalArgumentException invalid(String field, String value, String expected) {
    return new IllegalArgumentException("configuration: '" + field + "' is '" + value + "', expected " + expected);
  }
}
