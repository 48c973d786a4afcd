package io.kfold.cluster;

import io.kfold.config.NodeConfig;
import io.kfold.entity.IndexDefinition;
import io.kfold.entity.KfoldException;
import io.kfold.fold.FoldWatch;
import io.kfold.query.LocalQueries;
import io.kfold.query.LocalQueries.Page;
import io.kfold.query.Position;
import io.kfold.query.Query;
import io.kfold.store.IndexScan;
import io.kfold.store.StoredEntity;
import io.kfold.view.ViewType;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.PoolOptions;
import io.vertx.ext.web.client.WebClient;
import org.apache.kafka.common.TopicPartition;

import java.io.IOException;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.BiFunction;
import java.util.function.Predicate;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * Answers a query over every partition of its type: this node answers for the partitions it folds,
 * and asks each node that folds others once, for those partitions only; each answers its best
 * {@code limit} items with their positions, and the pages are merged in (value, key) order.
 *
 * <p>An answer is whole or a failure, never a partial list. A partition that no node is known to
 * fold (a rebalance) is waited for up to {@code http.forwardWaitMs}. A node asked for partitions it
 * no longer folds, or has not caught up on (this node's directory was behind), answers 503 naming
 * them, as does a node that cannot be reached: the partitions it was asked for are looked up again
 * and asked again, until {@code http.forwardWaitMs} since the query began is spent; then the whole
 * query fails with 503.
 *
 * <p>A query with a minimum position (a write's answer) is answered by the node that folds the
 * position's partition once its fold has passed it, so it holds that write.
 *
 * <p>{@code stale=true} may read copies: a partition this node keeps a warm standby copy of (one
 * read to its end at least once) is read here rather than asked of the node that folds it, and a
 * node asked answers from its copies too. Such an answer may be behind the fold, but each
 * partition in it is whole as of some moment; it is marked {@link #STALE}. The partition of a
 * {@code minPosition} is always read where it is folded: a copy cannot wait for a position.
 * Without a copy here, the partition is asked of the node that folds it, as without {@code stale}.
 */
public final class ClusterQueries {

  /**
   * The header of a query one node asks another: the numbers of the type's partitions to answer
   * for. The node asked answers for those alone, from its own store, or fails if it does not fold
   * one of them; it never asks further.
   */
  public static final String PARTITIONS = "X-Kfold-Partitions";
  /** The header of an answer in which some partition was read from a copy ({@code stale=true}), {@code true}. */
  public static final String STALE = "Kfold-Stale";
  /**
   * The member of a 503 problem naming the partitions a node cannot answer for right now (it does
   * not fold them, or not yet): another node may, so the asker looks their owners up again.
   */
  private static final String UNANSWERED = "unansweredPartitions";
  private static final long RETRY_EVERY_MS = 100;

  private final Vertx vertx;
  private final NodeConfig config;
  private final Ownership ownership;
  private final NodeDirectory directory;
  private final LocalQueries local;
  private final FoldWatch watch;
  private final WebClient client;
  private final Forwarder forwarder;

  /**
   * A query's {@code ?minPosition=&timeoutMs=}: the node that folds the position's partition answers
   * once its fold has passed the position, or fails with 504 after {@code timeoutMs}.
   */
  public record MinPosition(Position position, long timeoutMs) {}

  /**
   * A query as a caller asked it, checked: the conditions and page, the minimum position, whether
   * copies may answer, and the parameters as a query string, passed on to the nodes asked.
   */
  public record Request(Query query, MinPosition min, boolean stale, String queryString, Rows rows) {
    public Request(Query query, MinPosition min, boolean stale, String queryString) {
      this(query, min, stale, queryString, null);
    }
  }

  /**
   * What makes a query of every entity a list of a view's rows: the rows whose key starts with
   * {@code prefix} (null: all), and only those that {@code answers} accepts (a row whose entities
   * all left stays in the store, but is no row); with a {@code minPosition}, what a node waits for
   * before it reads its partitions ({@code ready}, null without).
   */
  public record Rows(String prefix, Predicate<StoredEntity> answers, RowsWait ready) {
    public Rows(String prefix, Predicate<StoredEntity> answers) {
      this(prefix, answers, null);
    }
  }

  /**
   * What a node waits for before it reads some partitions of a view's rows: that they hold the
   * contributions of the writes up to a position (see {@link ViewPositions}).
   */
  @FunctionalInterface
  public interface RowsWait {
    Future<Void> before(Set<TopicPartition> partitions);
  }

  /** A prefix of an entity id (a row key is one). */
  private static final Pattern KEY_PREFIX = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._~:@-]{0,127}");

  /** A query's page, and whether some partition of it was read from a copy. */
  public record Answer(Page page, boolean stale) {}

  /** The page of some partitions, and whether one of them was read from a copy. */
  private record Part(Page page, boolean stale) {}

  public ClusterQueries(Vertx vertx, NodeConfig config, Ownership ownership, NodeDirectory directory,
                        Forwarder forwarder, LocalQueries local, FoldWatch watch) {
    this.vertx = vertx;
    this.watch = watch;
    this.config = config;
    this.ownership = ownership;
    this.directory = directory;
    this.forwarder = forwarder;
    this.local = local;
    this.client = WebClient.create(vertx, NodeClients.web(config), new PoolOptions().setHttp1MaxSize(64));
  }

  /**
   * The query that the parameters of {@code GET /v1/{type}} (or the members of an event-bus query)
   * ask for: each parameter's values in the order given. A 400 saying what is wrong otherwise.
   */
  public Request request(String type, List<IndexDefinition> indexes, Map<String, List<String>> parameters) {
    Query query;
    try {
      query = Query.parse(type, indexes, parameters);
    } catch (IllegalArgumentException e) {
      throw KfoldException.badRequest(e.getMessage());
    }
    String stale = single(parameters, "stale");
    if (stale != null && !stale.equals("true") && !stale.equals("false")) {
      throw KfoldException.badRequest("stale is '" + stale + "'; expected true or false");
    }
    long timeoutMs = timeoutMs(parameters);
    String token = single(parameters, "minPosition");
    return new Request(query, token == null ? null : minPosition(query, token, timeoutMs), "true".equals(stale),
        queryString(parameters));
  }

  /** {@code timeoutMs}, 5000 when not given; a 400 when it is no whole number from 0 to {@code http.maxWaitMs}. */
  private long timeoutMs(Map<String, List<String>> parameters) {
    long maxWaitMs = config.http().maxWaitMs();
    String timeout = single(parameters, "timeoutMs");
    long timeoutMs;
    try {
      timeoutMs = timeout == null ? 5000 : Long.parseLong(timeout);
    } catch (NumberFormatException e) {
      timeoutMs = -1;
    }
    if (timeoutMs < 0 || timeoutMs > maxWaitMs) {
      throw KfoldException.badRequest("query parameter timeoutMs must be a whole number from 0 to " + maxWaitMs
          + ", was '" + timeout + "'");
    }
    return timeoutMs;
  }

  /** As {@link #rowsRequest(String, Map, Predicate, BiFunction)}, refusing {@code minPosition}. */
  public Request rowsRequest(String viewType, Map<String, List<String>> parameters, Predicate<StoredEntity> answers) {
    return rowsRequest(viewType, parameters, answers, null);
  }

  /**
   * The list of a view's rows that the parameters of {@code GET /v1/_views/{view}} ask for: every
   * row of the view's folded type in key order, {@code limit} at a time after the cursor
   * {@code after}, those whose key starts with {@code prefix}; with {@code minPosition}, each node
   * reads its partitions once the wait that {@code minPosition} makes of the token and
   * {@code timeoutMs} is over (it checks the token, a 400 when it is wrong), and reads them where
   * they are folded: a copy cannot wait. A 400 saying what is wrong otherwise.
   */
  public Request rowsRequest(String viewType, Map<String, List<String>> parameters, Predicate<StoredEntity> answers,
                             BiFunction<String, Long, RowsWait> minPosition) {
    for (String name : parameters.keySet()) {
      if (!Set.of("limit", "after", "prefix", "stale", "minPosition", "timeoutMs").contains(name)) {
        throw KfoldException.badRequest("'" + name + "' is no parameter of a list of rows; give limit, after, prefix,"
            + " stale, minPosition or timeoutMs");
      }
    }
    String token = single(parameters, "minPosition");
    RowsWait ready = null;
    if (token != null) {
      if (minPosition == null) {
        throw KfoldException.badRequest("minPosition is not served for this list");
      }
      ready = minPosition.apply(token, timeoutMs(parameters));
    }
    String prefix = single(parameters, "prefix");
    if (prefix != null && !KEY_PREFIX.matcher(prefix).matches()) {
      throw KfoldException.badRequest("prefix '" + prefix + "' starts no row key: use 1 to 128 letters, digits and"
          + " . _ ~ : @ -, starting with a letter or digit");
    }
    Map<String, List<String>> rest = new LinkedHashMap<>(parameters);
    rest.remove("prefix");
    rest.remove("minPosition");  // a position of a type the view is from, which is not the rows' type
    Request request = request(viewType, List.of(), rest);
    Query query = request.query();
    IndexScan.Position after = query.after();
    if (prefix != null) {
      // The rows from the prefix on: the scan begins after the greatest key before it, which no row key is.
      IndexScan.Position start = new IndexScan.Position(new byte[0], beforePrefix(prefix));
      if (after == null || Page.ORDER.compare(after, start) < 0) {
        after = start;
      }
    }
    query = new Query(query.type(), null, List.of(), query.limit(), false, after);
    return new Request(query, null, request.stale() && ready == null, queryString(parameters),
        new Rows(prefix, answers, ready));
  }

  /**
   * A string below {@code prefix} above which every row key from the prefix on lies, and no row key
   * below it: the prefix with its last character lowered by one and followed by DEL, a character no
   * key holds (keys hold ASCII characters up to '~').
   */
  static String beforePrefix(String prefix) {
    char last = prefix.charAt(prefix.length() - 1);
    return prefix.substring(0, prefix.length() - 1) + (char) (last - 1) + '\u007f';
  }

  private static String single(Map<String, List<String>> parameters, String name) {
    List<String> values = parameters.get(name);
    if (values == null || values.isEmpty()) {
      return null;
    }
    if (values.size() > 1) {
      throw KfoldException.badRequest("'" + name + "' is given " + values.size() + " times; give it once");
    }
    return values.get(0);
  }

  private static String queryString(Map<String, List<String>> parameters) {
    StringBuilder query = new StringBuilder();
    parameters.forEach((name, values) -> values.forEach(value -> query.append(query.isEmpty() ? "" : "&")
        .append(URLEncoder.encode(name, StandardCharsets.UTF_8)).append('=')
        .append(URLEncoder.encode(value, StandardCharsets.UTF_8))));
    return query.toString();
  }

  /**
   * A query's minimum position from its token; a 400 for a malformed token or one of another type's
   * events (a query reads its own type's partitions only).
   */
  private MinPosition minPosition(Query query, String token, long timeoutMs) {
    Position position;
    try {
      position = Position.parse(token);
    } catch (IllegalArgumentException e) {
      throw KfoldException.badRequest(e.getMessage());
    }
    if (!position.topic().equals(config.eventsTopic(query.type()))
        || !ownership.partitions(query.type()).contains(position.topicPartition())) {
      throw KfoldException.badRequest("minPosition '" + token + "' is not a position of " + query.type()
          + " events: pass the 'position' of a write of " + query.type());
    }
    return new MinPosition(position, timeoutMs);
  }

  /** The page of the query over every entity of its type. */
  public Future<Answer> run(Request request) {
    long deadline = System.currentTimeMillis() + config.http().forwardWaitMs();
    return pagesOf(request, ownership.partitions(request.query().type()), deadline)
        .map(parts -> new Answer(Page.merge(parts.stream().map(Part::page).toList(), request.query().limit(),
            request.query().scannedIndex()), parts.stream().anyMatch(Part::stale)));
  }

  /**
   * Pages that together cover exactly these partitions, each once: the partitions of a node that
   * could not answer are looked up and asked again, until the deadline.
   */
  private Future<List<Part>> pagesOf(Request request, Collection<TopicPartition> partitions, long deadline) {
    List<TopicPartition> ordered = List.copyOf(partitions);
    List<Future<String>> owners = new ArrayList<>(ordered.size());
    ordered.forEach(partition -> {
      Promise<String> owner = Promise.promise();
      findOwner(request, partition, deadline, owner);
      owners.add(owner.future());
    });
    return Future.all(owners).compose(found -> {
      Set<TopicPartition> here = new HashSet<>();
      Map<String, List<TopicPartition>> byNode = new LinkedHashMap<>();  // one request per node, however many partitions
      for (int i = 0; i < ordered.size(); i++) {
        String url = owners.get(i).result();
        if (url == null) {
          here.add(ordered.get(i));
        } else {
          byNode.computeIfAbsent(url, u -> new ArrayList<>()).add(ordered.get(i));
        }
      }
      List<Future<List<Part>>> parts = new ArrayList<>();
      if (!here.isEmpty()) {
        parts.add(again(request, here, deadline, answerHere(request, here)));
      }
      byNode.forEach((url, theirs) -> parts.add(again(request, theirs, deadline, ask(url, request, theirs))));
      return Future.all(parts).map(all -> {
        List<Part> flat = new ArrayList<>();
        all.<List<Part>>list().forEach(flat::addAll);
        return flat;
      });
    });
  }

  /**
   * The part, or, when the node that was to answer for these partitions could not (it no longer
   * folds them, or cannot be reached), the pages of their owners looked up again; past the
   * deadline, a 503 naming them.
   */
  private Future<List<Part>> again(Request request, Collection<TopicPartition> partitions, long deadline,
                                   Future<Part> part) {
    return part.map(List::of).recover(e -> {
      if (!(e instanceof KfoldException k) || k.status() != 503 || !k.details().containsKey(UNANSWERED)) {
        return Future.failedFuture(e);
      }
      if (System.currentTimeMillis() + RETRY_EVERY_MS > deadline) {
        return Future.failedFuture(KfoldException.unavailable("no node answered for " + names(partitions)
            + " within http.forwardWaitMs (a rebalance?), so a query of " + request.query().type()
            + " would be incomplete; retry. Last: " + e.getMessage()));
      }
      return vertx.timer(RETRY_EVERY_MS).compose(v -> pagesOf(request, partitions, deadline));
    });
  }

  /**
   * The page of the query over the partitions another node asked this one for ({@link #PARTITIONS}),
   * with its items' positions; fails with 503 if this node cannot answer for one of them.
   */
  public Future<Answer> runAsked(Request request, String askedPartitions) {
    Set<TopicPartition> asked = new HashSet<>();
    for (String number : askedPartitions.split(",")) {
      try {
        asked.add(new TopicPartition(config.eventsTopic(request.query().type()), Integer.parseInt(number.trim())));
      } catch (NumberFormatException e) {
        return Future.failedFuture(KfoldException.badRequest(PARTITIONS + " must list partition numbers, was '"
            + askedPartitions + "'"));
      }
    }
    return answerHere(request, asked).map(part -> new Answer(part.page(), part.stale()));
  }

  /**
   * This node's page over partitions it answers for, read on a worker thread (the store blocks);
   * when one of them is the partition of {@code min}, once the fold has passed that position.
   */
  private Future<Part> answerHere(Request request, Set<TopicPartition> partitions) {
    KfoldException unanswered = notAnswerable(request, partitions);
    if (unanswered != null) {
      return Future.failedFuture(unanswered);
    }
    MinPosition min = request.min();
    Future<Void> folded = min == null || !partitions.contains(min.position().topicPartition())
        ? Future.succeededFuture()
        : watch.awaitFolded(min.position().topicPartition(), min.position().offset(), min.timeoutMs());
    if (request.rows() != null && request.rows().ready() != null) {
      folded = folded.compose(v -> request.rows().ready().before(partitions));
    }
    Query query = request.query();
    return folded.compose(v -> vertx.executeBlocking(() -> {
      boolean fromCopy = partitions.stream().anyMatch(p -> !ownership.current(p));
      Predicate<String> holds = key -> partitions.contains(ownership.partition(query.type(), key));
      Rows rows = request.rows();
      Page page = rows == null ? local.run(query, holds) : local.run(query, holds, rows.prefix(), rows.answers());
      // A partition taken away during the scan may have been read only in part: no answer rather than a partial one.
      KfoldException takenAway = notAnswerable(request, partitions);
      if (takenAway != null) {
        throw takenAway;
      }
      return new Part(page, fromCopy || partitions.stream().anyMatch(p -> !ownership.current(p)));
    }, false));
  }

  /** Whether this node answers for the partition: it folds it and is current, or, if the request allows, has a warm copy. */
  private boolean answersFor(Request request, TopicPartition partition) {
    return ownership.current(partition) || (request.stale() && ownership.warmCopy(partition)
        && (request.min() == null || !request.min().position().topicPartition().equals(partition)));
  }

  /** A 503 naming the partitions this node cannot answer for; null when it answers for all. */
  private KfoldException notAnswerable(Request request, Set<TopicPartition> partitions) {
    List<TopicPartition> missing = partitions.stream().filter(p -> !answersFor(request, p)).toList();
    return missing.isEmpty() ? null : new KfoldException(503, "Unavailable", "node " + directory.node()
        + " does not fold " + names(missing) + " or is still catching up on them (a rebalance?); retry",
        Map.of(UNANSWERED, names(missing)));
  }

  private static List<String> names(Collection<TopicPartition> partitions) {
    return partitions.stream().map(TopicPartition::toString).sorted().toList();
  }

  private Future<Part> ask(String url, Request request, List<TopicPartition> partitions) {
    String type = request.query().type();
    String numbers = partitions.stream().map(p -> String.valueOf(p.partition())).sorted()
        .collect(Collectors.joining(","));
    String queryString = request.queryString();
    String view = ViewType.viewName(type);
    String path = view == null ? "/v1/" + type : "/v1/_views/" + view;
    String uri = path + (queryString.isEmpty() ? "" : "?" + queryString);
    // The node asks on its own account: the caller's read was checked where the query came in.
    return forwarder.fromThisNode(client.getAbs(url + uri), HttpMethod.GET, uri)
        .timeout(config.http().maxWaitMs() + config.http().forwardWaitMs() + 5_000)
        .putHeader(PARTITIONS, numbers)
        .send()
        // Not reached (it stopped, or is stopping): the partitions may have another node by now.
        .recover(e -> Future.failedFuture(new KfoldException(503, "Unavailable", "asking " + url + " for " + type
            + " partitions " + numbers + " failed: " + e.getMessage(), Map.of(UNANSWERED, names(partitions)))))
        .compose(answer -> {
          if (answer.statusCode() != 200) {
            return Future.failedFuture(Forwarder.problem(url, answer.statusCode(), answer.body()));
          }
          try {
            return Future.succeededFuture(new Part(Page.parse(answer.body() == null ? new byte[0] : answer.body().getBytes()),
                "true".equals(answer.getHeader(STALE))));
          } catch (IOException | IllegalArgumentException e) {
            return Future.failedFuture(KfoldException.unavailable("the node at " + url + " answered a page this node"
                + " cannot read: " + e.getMessage()));
          }
        });
  }

  /**
   * Completes with null when this node answers for the partition, with the URL of the node that
   * folds it as the claims say, or, past the deadline, fails with 503. While this node catches up
   * on a partition it was given, it waits rather than asking the previous owner.
   */
  private void findOwner(Request request, TopicPartition partition, long deadline, Promise<String> owner) {
    var claim = directory.owner(partition);
    if (answersFor(request, partition)) {
      owner.complete(null);
    } else if (!ownership.owns(partition) && claim.isPresent() && !claim.get().node().equals(directory.node())) {
      owner.complete(claim.get().url());
    } else if (System.currentTimeMillis() > deadline) {
      owner.fail(KfoldException.unavailable("no node is known to fold " + partition + " and to have caught up on it"
          + " at the moment (a rebalance?), so a query of its type would be incomplete; retry"));
    } else {
      vertx.setTimer(RETRY_EVERY_MS, id -> findOwner(request, partition, deadline, owner));
    }
  }

  public void close() {
    client.close();
  }
}
