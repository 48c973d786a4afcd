package io.kfold.http;

import io.kfold.store.EntityStore;
import io.kfold.store.StoredEntity;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads entity states for the handlers of one event loop. The reads asked while the loop handles
 * one round of ready connections go to a worker thread together, as one multi-get per type: under
 * load, one hop to a worker serves many requests instead of one.
 *
 * <p>Event-loop confined: call {@link #get} from the context it was made on.
 */
final class StateReads {

  private record Read(String key, Promise<StoredEntity> answer) {}

  private final Context context;
  private final EntityStore store;
  /** Per type, the reads of this round; null when none is waiting. */
  private Map<String, List<Read>> waiting;

  StateReads(Context context, EntityStore store) {
    this.context = context;
    this.store = store;
  }

  /** The stored state of an entity, or null when it has none. */
  Future<StoredEntity> get(String type, String key) {
    if (waiting == null) {
      waiting = new HashMap<>();
      // Runs once the loop has handled the connections ready now, so their reads join this round.
      context.runOnContext(v -> readWaiting());
    }
    Promise<StoredEntity> answer = Promise.promise();
    waiting.computeIfAbsent(type, t -> new ArrayList<>()).add(new Read(key, answer));
    return answer.future();
  }

  private void readWaiting() {
    Map<String, List<Read>> round = waiting;
    waiting = null;
    round.forEach((type, reads) -> {
      List<String> keys = new ArrayList<>(reads.size());
      reads.forEach(read -> keys.add(read.key()));
      context.executeBlocking(() -> store.getAll(type, keys), false).onComplete(states -> {
        for (int i = 0; i < reads.size(); i++) {
          if (states.succeeded()) {
            reads.get(i).answer().complete(states.result().get(i));
          } else {
            reads.get(i).answer().fail(states.cause());
          }
        }
      });
    });
  }
}
