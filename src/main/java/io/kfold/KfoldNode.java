package io.kfold;

import io.kfold.entity.EntityType;
import io.kfold.entity.EntityTypes;
import io.kfold.fold.FoldProgress;
import io.kfold.fold.FoldVerticle;
import io.kfold.fold.FoldWatch;
import io.kfold.http.HttpApiVerticle;
import io.kfold.log.KafkaClients;
import io.kfold.log.Topics;
import io.kfold.store.EntityStore;
import io.kfold.store.RocksEntityStore;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import org.apache.kafka.clients.admin.Admin;

import java.util.List;

/**
 * One running kfold node on a Kafka cluster: its topics, its store, and its verticles deployed in
 * order (fold, then HTTP). A failed step fails the start and undoes the steps before it.
 */
public final class KfoldNode {

  private final Vertx vertx;
  private final EntityStore store;
  private final FoldProgress progress;
  private final List<String> deployments;
  private final HttpApiVerticle http;

  private KfoldNode(Vertx vertx, EntityStore store, FoldProgress progress, List<String> deployments,
                    HttpApiVerticle http) {
    this.vertx = vertx;
    this.store = store;
    this.progress = progress;
    this.deployments = deployments;
    this.http = http;
  }

  /** Starts a node on the cluster named by {@code config.kafka().bootstrap()}. */
  public static Future<KfoldNode> start(Vertx vertx, KfoldConfig config) {
    EntityTypes types = EntityTypes.from(config);
    List<String> typeNames = types.all().stream().map(EntityType::name).toList();
    return vertx.executeBlocking(() -> {
      try (Admin admin = Admin.create(KafkaClients.admin(config.kafka().bootstrap(), config.app() + "-topics"))) {
        Topics.ensure(admin, config, typeNames);
      }
      return new RocksEntityStore(config.dataDir().resolve("store"));
    }).compose(store -> {
      FoldProgress progress = new FoldProgress();
      FoldWatch watch = new FoldWatch(vertx, store);
      HttpApiVerticle http = new HttpApiVerticle(config, types, store, watch, progress);
      return vertx.deployVerticle(new FoldVerticle(config, types, store, watch, progress))
          .compose(fold -> vertx.deployVerticle(http)
              .map(api -> new KfoldNode(vertx, store, progress, List.of(api, fold), http))
              .recover(e -> vertx.undeploy(fold).transform(v -> Future.failedFuture(e))))
          .recover(e -> vertx.executeBlocking(() -> {
            store.close();
            return null;
          }).transform(v -> Future.failedFuture(e)));
    });
  }

  public int httpPort() {
    return http.port();
  }

  public FoldProgress progress() {
    return progress;
  }

  public EntityStore store() {
    return store;
  }

  /** Undeploys the verticles (HTTP first, then the fold) and closes the store. */
  public Future<Void> stop() {
    Future<Void> chain = Future.succeededFuture();
    for (String deployment : deployments) {
      chain = chain.eventually(() -> vertx.undeploy(deployment));
    }
    return chain.eventually(() -> vertx.executeBlocking(() -> {
      store.close();
      return null;
    })).mapEmpty();
  }
}
