package io.kfold;

import io.kfold.KfoldClient.Changes;
import io.kfold.KfoldClient.EntityChange;
import io.kfold.entity.KfoldException;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;

import java.util.ArrayDeque;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * The stream both clients hand out for an entity's changes: it keeps the changes its reader has
 * not asked for yet (at most {@link #MAX_PENDING}), and pauses its source while the reader asks for
 * none, where pausing loses nothing (the HTTP response). Driven on the context that opened it.
 */
final class ChangeFeed implements Changes {

  /**
   * The most changes the feed keeps for a reader that does not take them: past it the stream fails
   * and ends, rather than drop a change in silence. (Over HTTP the response is paused long before.)
   */
  static final int MAX_PENDING = 10_000;

  private final Context context;
  private final ArrayDeque<EntityChange> pending = new ArrayDeque<>();
  private Consumer<Boolean> sourceFlowing = flowing -> {};
  private Supplier<Future<Void>> sourceClose = Future::succeededFuture;
  private Handler<EntityChange> handler;
  private Handler<Void> endHandler;
  private Handler<Throwable> exceptionHandler;
  private long demand = Long.MAX_VALUE;
  private boolean sourcePaused;
  private boolean sourceEnded;
  private boolean over;
  private boolean draining;

  /** @param context where the source delivers and the reader is called */
  ChangeFeed(Context context) {
    this.context = context;
  }

  /**
   * Opens a feed whose source {@code subscribe} sets up on one context, the feed's: a source
   * (a record parser above all) is then driven from the thread that feeds it.
   */
  static Future<Changes> open(Vertx vertx, Function<ChangeFeed, Future<?>> subscribe) {
    Context context = vertx.getOrCreateContext();
    ChangeFeed feed = new ChangeFeed(context);
    Promise<Changes> subscribed = Promise.promise();
    context.runOnContext(v -> subscribe.apply(feed).<Changes>map(feed).onComplete(subscribed));
    return subscribed.future();
  }

  /** The source the feed pauses and resumes, and closes with it. */
  void source(Consumer<Boolean> flowing, Supplier<Future<Void>> close) {
    this.sourceFlowing = flowing;
    this.sourceClose = close;
  }

  void push(EntityChange change) {
    if (over || sourceEnded) {
      return;
    }
    if (pending.size() >= MAX_PENDING) {
      sourceClose.get();
      fail(KfoldException.unavailable("the reader of the changes of " + change.key() + " left " + MAX_PENDING
          + " changes untaken: the stream ends here, without dropping any; open a new one from the entity's state"));
      return;
    }
    pending.add(change);
    drain();
  }

  /** The source ended: the reader gets what is pending, then the end. */
  void end() {
    if (!over && !sourceEnded) {
      sourceEnded = true;
      drain();
    }
  }

  void fail(Throwable failure) {
    if (over) {
      return;
    }
    if (exceptionHandler != null) {
      exceptionHandler.handle(failure);
    }
    end();
  }

  @Override
  public Future<Void> close() {
    Promise<Void> closed = Promise.promise();
    onContext(() -> {
      if (over) {
        closed.complete();
        return;
      }
      over = true;
      pending.clear();
      sourceClose.get().onComplete(closed);
    });
    return closed.future();
  }

  @Override
  public ChangeFeed handler(Handler<EntityChange> handler) {
    onContext(() -> {
      this.handler = handler;
      drain();
    });
    return this;
  }

  @Override
  public ChangeFeed endHandler(Handler<Void> endHandler) {
    onContext(() -> this.endHandler = endHandler);
    return this;
  }

  @Override
  public ChangeFeed exceptionHandler(Handler<Throwable> handler) {
    onContext(() -> this.exceptionHandler = handler);
    return this;
  }

  @Override
  public ChangeFeed pause() {
    onContext(() -> {
      demand = 0;
      drain();
    });
    return this;
  }

  @Override
  public ChangeFeed resume() {
    return fetch(Long.MAX_VALUE);
  }

  @Override
  public ChangeFeed fetch(long amount) {
    onContext(() -> {
      demand = amount == Long.MAX_VALUE || Long.MAX_VALUE - demand <= amount ? Long.MAX_VALUE : demand + amount;
      drain();
    });
    return this;
  }

  /**
   * Hands the reader what it asked for, then tells the source whether to go on; round again, as a
   * source may hand over what it held while it is told to go on.
   */
  private void drain() {
    if (draining) {
      return;
    }
    draining = true;
    try {
      while (!over) {
        while (handler != null && demand > 0 && !pending.isEmpty()) {
          if (demand != Long.MAX_VALUE) {
            demand--;
          }
          handler.handle(pending.poll());
          if (over) {
            return;
          }
        }
        if (sourceEnded && pending.isEmpty()) {
          over = true;
          if (endHandler != null) {
            endHandler.handle(null);
          }
          return;
        }
        // Paused while the reader asks for none, or while changes wait for a handler.
        boolean pause = demand == 0 || (handler == null && !pending.isEmpty());
        if (pause == sourcePaused) {
          return;
        }
        sourcePaused = pause;
        sourceFlowing.accept(!pause);
      }
    } finally {
      draining = false;
    }
  }

  private void onContext(Runnable action) {
    if (Vertx.currentContext() == context) {
      action.run();
    } else {
      context.runOnContext(v -> action.run());
    }
  }
}
