package io.kfold.effects;

import io.kfold.entity.EffectSink;
import io.kfold.plugin.Plugins;
import io.vertx.core.Future;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * The application's own sinks of a node's workers of {@code kind: sink}, created (from
 * {@code class:}) or looked up (by {@code name:}) when the node starts, before anything runs, so
 * that a missing or broken sink stops the start with a message naming the worker, and the class
 * and its jar or the name.
 */
public final class PluggedSinks {

  private final Map<String, PluggedSink> byWorker;

  private PluggedSinks(Map<String, PluggedSink> byWorker) {
    this.byWorker = byWorker;
  }

  /**
   * @param registered the sinks the application registered in code, by name
   * @throws IllegalArgumentException for a class that cannot be found or created, or a name not registered
   */
  public static PluggedSinks of(List<EffectConfig> effects, Plugins plugins, Map<String, EffectSink> registered) {
    Map<String, PluggedSink> byWorker = new HashMap<>();
    try {
      add(byWorker, effects, plugins, registered);
    } catch (RuntimeException e) {
      new PluggedSinks(byWorker).close();  // the sinks created before the one that failed
      throw e;
    }
    return new PluggedSinks(byWorker);
  }

  private static void add(Map<String, PluggedSink> byWorker, List<EffectConfig> effects, Plugins plugins,
                          Map<String, EffectSink> registered) {
    for (EffectConfig effect : effects) {
      if (!(effect.target() instanceof EffectConfig.SinkTarget target)) {
        continue;
      }
      String at = "configuration: 'effects." + effect.name() + ".target";
      if (target.className() != null) {
        byWorker.put(effect.name(), new PluggedSink(plugins.create(target.className(), EffectSink.class,
            at + ".class'", target.settings()), true));
      } else {
        EffectSink sink = registered.get(target.name());
        if (sink == null) {
          throw new IllegalArgumentException(at + ".name' is '" + target.name() + "', but no sink is registered under"
              + " that name with KfoldNode.Options.withSink (registered: " + new TreeSet<>(registered.keySet()) + ")");
        }
        byWorker.put(effect.name(), new PluggedSink(sink, false));
      }
    }
  }

  /**
   * Closes the sinks kfold created, for a start that failed before their workers ran (a worker
   * closes its own when it stops; each sink is closed once).
   */
  public Future<Void> close() {
    return Future.join(byWorker.values().stream().map(PluggedSink::close).toList()).mapEmpty();
  }

  /** The sink of a worker of kind sink. */
  PluggedSink of(EffectConfig effect) {
    PluggedSink sink = byWorker.get(effect.name());
    if (sink == null) {
      throw new IllegalStateException("no sink was prepared for the worker " + effect.name());
    }
    return sink;
  }
}
