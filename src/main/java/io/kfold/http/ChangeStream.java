package io.kfold.http;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kfold.types.EntityIds;
import io.kfold.types.EntityTypes;
import io.kfold.types.Envelopes;
import io.kfold.entity.KfoldException;
import io.kfold.fold.FoldWatch;
import io.kfold.store.EntityStore;
import io.kfold.store.StoredEntity;
import io.kfold.view.ViewType;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.ext.web.RoutingContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import java.util.regex.Pattern;

/**
 * {@code GET /v1/{type}/{id}/changes}: the entity's changes as Server-Sent Events. Each event's
 * {@code id} is the entity's version.
 *
 * <p>A new stream opens with an {@code event: state} holding the current state (a comment instead
 * for a new entity), then sends an {@code event: change} for each accepted event, in version order:
 * the change record {@code {id, event, state}}.
 *
 * <p>A client that reconnects with {@code Last-Event-ID: N} gets no {@code state}: it gets an
 * {@code event: change} for each version after N, from the entity's stored history and then live,
 * without gap or duplicate. The store keeps only the latest state, so a change replayed from the
 * history carries {@code state} only when it is the entity's latest version as the history is read
 * (at least the last one replayed); the others are {@code {id, event}}. Should the history lack
 * the versions after N, the stream starts over with {@code event: state}.
 *
 * <p>A client that reads slower than its entity changes would make the node hold ever more for
 * it: each stream holds at most {@code http.streamMaxPendingBytes} (what its connection has not
 * taken yet, and changes waiting behind a replay); a change that would go past that ends the
 * stream, and the client reconnects with its last id. A replay reads the history a page at a time,
 * as the client takes it.
 */
final class ChangeStream {

  private static final Logger LOG = LoggerFactory.getLogger(ChangeStream.class);
  private static final long KEEPALIVE_MS = 15_000;
  /** Events read from the history at once while a client catches up. */
  private static final int PAGE_EVENTS = 256;
  private static final Pattern VERSION = Pattern.compile("[0-9]{1,18}");
  private static final Buffer KEEPALIVE = Buffer.buffer(": keepalive\n\n");

  private final Vertx vertx;
  private final EntityTypes types;
  private final EntityStore store;
  private final FoldWatch watch;
  private final long maxPendingBytes;
  /** Streams ended because their client read too slowly. */
  private final LongAdder cut = new LongAdder();
  /** Bytes all open streams hold for their clients. */
  private final AtomicLong pendingBytes = new AtomicLong();
  /** The most bytes one stream has held for its client. */
  private final AtomicLong mostPendingBytes = new AtomicLong();

  ChangeStream(Vertx vertx, EntityTypes types, EntityStore store, FoldWatch watch, long maxPendingBytes) {
    this.vertx = vertx;
    this.types = types;
    this.store = store;
    this.watch = watch;
    this.maxPendingBytes = maxPendingBytes;
  }

  long cut() {
    return cut.sum();
  }

  long pendingBytes() {
    return pendingBytes.get();
  }

  long mostPendingBytes() {
    return mostPendingBytes.get();
  }

  void handle(RoutingContext ctx) {
    handle(ctx, types.get(ctx.pathParam("type")).name(), HttpApiVerticle.entityId(ctx), null);
  }

  /**
   * {@code GET /v1/_views/{view}/{key}/changes}: the row's answers {@code {key, row, entities}} as
   * {@code event: row}, its current one first, then its new one after each fold batch that changed
   * it (the contributions a batch applies to a row come as one answer; {@code row} null and
   * {@code entities} 0 once no entity is left). Each event's {@code id} is the
   * row's version; a row keeps no history, so a client that reconnects behind the row gets its
   * current answer, and nothing while it is not behind.
   */
  void handleRow(RoutingContext ctx) {
    ViewType view = types.view(ctx.pathParam("view"));
    handle(ctx, view.name(), EntityIds.check(ctx.pathParam("key")), view);
  }

  private void handle(RoutingContext ctx, String type, String key, ViewType view) {
    OptionalLong lastEventId = lastEventId(ctx);
    HttpServerResponse response = ctx.response();
    response.setChunked(true)
        .putHeader("content-type", "text/event-stream")
        .putHeader("cache-control", "no-cache");
    // The head goes at once: a client that missed nothing may hear nothing else for a while.
    response.writeHead();
    Stream stream = new Stream(type, key, response, view);
    // Listen before reading the store, so that no change falls between the two.
    Runnable stopListening = watch.listen(type, key, stream::live);
    long keepalive = vertx.setPeriodic(KEEPALIVE_MS, id -> stream.keepalive());
    response.closeHandler(v -> {
      stopListening.run();
      vertx.cancelTimer(keepalive);
      stream.closed();
    });
    if (lastEventId.isPresent()) {
      stream.catchUp(lastEventId.getAsLong());
    } else {
      vertx.executeBlocking(() -> store.get(type, key), false)
          .onSuccess(stream::open)
          .onFailure(e -> {
            LOG.warn("the change stream of {} '{}' could not read the state: {}", type, key, e.toString());
            response.reset();
          });
    }
  }

  private static OptionalLong lastEventId(RoutingContext ctx) {
    String header = ctx.request().getHeader("Last-Event-ID");
    if (header == null || header.isBlank()) {
      return OptionalLong.empty();
    }
    if (!VERSION.matcher(header.trim()).matches()) {
      throw KfoldException.badRequest("Last-Event-ID must be an id this stream sent (an entity version), was '"
          + header + "'");
    }
    return OptionalLong.of(Long.parseLong(header.trim()));
  }

  private enum Phase { OPENING, CATCHING_UP, LIVE, OVER }

  /** What a read of the history gave: frames to send, the version they reach, and the entity's version then. */
  private record Page(List<Buffer> frames, long reached, long current) {}

  /** One client's stream; all its methods run on the request's event loop. */
  private final class Stream {
    private final String type;
    private final String key;
    private final HttpServerResponse response;
    private Phase phase = Phase.OPENING;
    /** The version of the last change queued for the client. */
    private long sent;
    /** Live changes (change records) that came while the stream opened or caught up. */
    private final ArrayDeque<Buffer> early = new ArrayDeque<>();
    private long earlyBytes;
    /** Frames waiting for the connection to take them. */
    private final ArrayDeque<Buffer> queue = new ArrayDeque<>();
    /** Bytes written to the connection and not yet taken by it. */
    private long unflushed;
    /** Bytes held for this client: unflushed, queued and early. */
    private long held;
    private boolean reading;
    /** The view of a row's stream; null for an entity's. */
    private final ViewType view;

    Stream(String type, String key, HttpServerResponse response, ViewType view) {
      this.type = type;
      this.key = key;
      this.response = response;
      this.view = view;
    }

    /** A new stream: the current state first. */
    void open(StoredEntity stored) {
      if (phase == Phase.OVER) {
        return;
      }
      if (stored == null) {
        enqueue(Buffer.buffer(": no events yet\n\n"), false);
      } else {
        sent = stored.version();
        enqueue(stateFrame(stored), false);
      }
      goLive();
    }

    /** A stream that resumes after {@code lastSeen}: the versions after it from the history, then live. */
    void catchUp(long lastSeen) {
      sent = lastSeen;
      phase = Phase.CATCHING_UP;
      readPage();
    }

    /** A change the fold just applied. */
    void live(Buffer change) {
      if (phase == Phase.OVER) {
        return;
      }
      if (phase != Phase.LIVE) {
        if (tooMuch(change.length())) {
          cutOff();
          return;
        }
        early.add(change);
        earlyBytes += change.length();
        hold(change.length());
        return;
      }
      JsonNode record = HttpApiVerticle.parse(change.getBytes());
      long version = record.path("event").path("version").asLong();
      if (version > sent) {
        sent = version;
        enqueue(view == null ? changeFrame(version, change) : rowFrame(version, record.get("state")), true);
      }
    }

    void keepalive() {
      if (phase != Phase.OVER && held == 0) {
        enqueue(KEEPALIVE.copy(), false);
      }
    }

    void closed() {
      phase = Phase.OVER;
      dropWaiting();
    }

    /**
     * Reads the next page of history once the client has taken most of what it was sent. The page
     * fits in what the bound leaves beside the live changes waiting (a lone change always goes).
     */
    private void readPage() {
      if (phase != Phase.CATCHING_UP || reading || held - earlyBytes > maxPendingBytes / 4) {
        return;
      }
      reading = true;
      long after = sent;
      long room = Math.min(maxPendingBytes / 4, maxPendingBytes - held);
      vertx.executeBlocking(() -> page(after, room), false).onComplete(read -> {
        if (phase == Phase.OVER) {
          return;
        }
        if (read.failed()) {
          LOG.warn("the change stream of {} '{}' could not read the history after version {}: {}", type, key, after,
              read.cause().toString());
          end();
          return;
        }
        Page page = read.result();
        sent = page.reached();
        // Still reading until the page is queued: a write that completes at once must not read it again.
        page.frames().forEach(frame -> enqueue(frame, false));
        reading = false;
        if (phase == Phase.OVER) {
          return;
        }
        if (sent >= page.current()) {
          goLive();
        } else {
          readPage();
        }
      });
    }

    /** On a worker thread: the frames of the versions after {@code after}, about {@code room} bytes of them. */
    private Page page(long after, long room) throws IOException {
      StoredEntity stored = store.get(type, key);
      long current = stored == null ? 0 : stored.version();
      if (current <= after) {
        return new Page(List.of(), after, current);
      }
      if (view != null) {
        return new Page(List.of(stateFrame(stored)), current, current);  // a row keeps no history
      }
      List<byte[]> events = store.history(type, key, after + 1, (int) Math.min(PAGE_EVENTS, current - after));
      List<Buffer> frames = new ArrayList<>();
      long version = after;
      long bytes = 0;
      for (byte[] event : events) {
        long next = version + 1;
        if (Envelopes.parse(event).path("version").asLong() != next) {
          break;
        }
        // The store holds the state after the latest version only.
        Buffer frame = changeFrame(next, changeRecord(key, next, event, next == current ? stored.state() : null));
        if (!frames.isEmpty() && bytes + frame.length() > room) {
          break;
        }
        frames.add(frame);
        bytes += frame.length();
        version = next;
      }
      if (frames.isEmpty()) {
        LOG.info("the history of {} '{}' lacks version {}: its change stream starts over from the state", type, key,
            after + 1);
        return new Page(List.of(stateFrame(stored)), current, current);
      }
      return new Page(frames, version, current);
    }

    /** The frame of the stored entity: its state, or the row's answer. */
    private Buffer stateFrame(StoredEntity stored) {
      return view == null ? ChangeStream.stateFrame(key, stored) : rowFrame(stored.version(), parseState(stored));
    }

    /** {@code event: row} with the row's answer in {@code state}. */
    private Buffer rowFrame(long version, JsonNode state) {
      if (view.answering() == null) {
        return Buffer.buffer(": the view is being built\n\n");  // no version answers yet: nothing to say of the row
      }
      ObjectNode answer = view.answer(key, state);
      if (answer == null) {
        answer = JsonNodeFactory.instance.objectNode().put("key", key).putNull("row").put("entities", 0);
      }
      return frame("row", version, Buffer.buffer(Envelopes.toBytes(answer)));
    }

    /** Caught up: the changes that came meanwhile, past what was sent, then each as it comes. */
    private void goLive() {
      phase = Phase.LIVE;
      while (!early.isEmpty() && phase == Phase.LIVE) {
        Buffer change = early.poll();
        earlyBytes -= change.length();
        hold(-change.length());
        live(change);
      }
    }

    /** Whether {@code bytes} more would take this stream past its bound (a lone frame always fits). */
    private boolean tooMuch(long bytes) {
      return held > 0 && held + bytes > maxPendingBytes;
    }

    private void enqueue(Buffer frame, boolean mayCut) {
      if (phase == Phase.OVER) {
        return;
      }
      if (mayCut && tooMuch(frame.length())) {
        cutOff();
        return;
      }
      queue.add(frame);
      hold(frame.length());
      flush();
    }

    /** Writes queued frames while the connection has room for them. */
    private void flush() {
      if (response.closed()) {
        return;
      }
      while (!queue.isEmpty() && (unflushed == 0 || unflushed + queue.peek().length() <= maxPendingBytes)) {
        Buffer frame = queue.poll();
        int length = frame.length();
        unflushed += length;
        response.write(frame).onComplete(written -> {
          unflushed -= length;
          hold(-length);
          if (phase != Phase.OVER) {
            flush();
            readPage();
          }
        });
      }
    }

    private void hold(long bytes) {
      held += bytes;
      pendingBytes.addAndGet(bytes);
      if (bytes > 0) {
        mostPendingBytes.accumulateAndGet(held, Math::max);
      }
    }

    /** Ends the stream of a client that does not keep up: it reconnects with its last id. */
    private void cutOff() {
      cut.increment();
      LOG.debug("the change stream of {} '{}' holds {} bytes for a slow client: ending it", type, key, held);
      end();
    }

    private void end() {
      phase = Phase.OVER;
      dropWaiting();
      // Closes the connection: ending the response would wait behind the bytes the client is not taking.
      response.reset();
    }

    /** Forgets what was not written yet; what was is let go as the connection takes or drops it. */
    private void dropWaiting() {
      long waiting = 0;
      for (Buffer frame : queue) {
        waiting += frame.length();
      }
      for (Buffer change : early) {
        waiting += change.length();
      }
      queue.clear();
      early.clear();
      earlyBytes = 0;
      hold(-waiting);
    }
  }

  private static JsonNode parseState(StoredEntity stored) {
    return HttpApiVerticle.parse(stored.state());
  }

  private static Buffer stateFrame(String key, StoredEntity stored) {
    Buffer state = Buffer.buffer(stored.state().length + key.length() + 48)
        .appendString("{\"key\":").appendBytes(HttpApiVerticle.quoted(key))
        .appendString(",\"version\":" + stored.version() + ",\"state\":").appendBytes(stored.state())
        .appendString("}");
    return frame("state", stored.version(), state);
  }

  private static Buffer changeFrame(long version, Buffer change) {
    return frame("change", version, change);
  }

  private static Buffer frame(String event, long id, Buffer data) {
    return Buffer.buffer(data.length() + 48).appendString("event: " + event + "\nid: " + id + "\ndata: ")
        .appendBuffer(data).appendString("\n\n");
  }

  /** A change record {@code {id, event, state}} from the history; without state when it is not known. */
  private static Buffer changeRecord(String key, long version, byte[] event, byte[] state) {
    Buffer record = Buffer.buffer(event.length + (state == null ? 0 : state.length) + key.length() + 48)
        .appendString("{\"id\":").appendBytes(HttpApiVerticle.quoted(key + ":" + version))
        .appendString(",\"event\":").appendBytes(event);
    if (state != null) {
      record.appendString(",\"state\":").appendBytes(state);
    }
    return record.appendString("}");
  }
}
