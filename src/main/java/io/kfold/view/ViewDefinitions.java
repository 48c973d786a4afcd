package io.kfold.view;

import io.kfold.config.NodeConfig;
import io.kfold.entity.ViewDefinition;
import io.kfold.plugin.Plugins;

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The views a node keeps, by name and by the entity type they read: those declared in
 * configuration, and those written in Java and named there by {@code class:}. Built once at start;
 * a bad view stops the start.
 */
public final class ViewDefinitions {

  private final Map<String, ViewDefinition> byName = new LinkedHashMap<>();
  private final Map<String, List<ViewDefinition>> byType = new LinkedHashMap<>();

  private ViewDefinitions() {}

  public static ViewDefinitions from(NodeConfig config) {
    Set<String> types = new LinkedHashSet<>();
    config.types().forEach(type -> types.add(type.name()));
    config.checkTypeNames(types);
    return of(configured(config, Plugins.none()), types);
  }

  /** The configuration's views, those named by {@code class:} loaded through {@code plugins}; not yet checked. */
  public static List<ViewDefinition> configured(NodeConfig config, Plugins plugins) {
    List<ViewDefinition> views = new ArrayList<>();
    for (NodeConfig.ViewConfig view : config.views()) {
      views.add(view.view() != null ? view.view() : instantiate(view, plugins));
    }
    return views;
  }

  /** The views given, checked against the node's entity types: unique valid names, known types. */
  public static ViewDefinitions of(List<ViewDefinition> views, Set<String> types) {
    ViewDefinitions definitions = new ViewDefinitions();
    for (ViewDefinition view : views) {
      String name = view.name();
      if (name == null || !ConfiguredView.NAME.matcher(name).matches()) {
        throw new IllegalArgumentException("configuration: view '" + name + "' of " + view.getClass().getName()
            + ": not a view name: lower-case letters, digits and '-', starting with a letter, at most 63");
      }
      if (definitions.byName.putIfAbsent(name, view) != null) {
        throw new IllegalArgumentException("configuration: the view '" + name + "' is declared twice");
      }
      if (view.from() == null || view.from().isEmpty() || view.fingerprint() == null) {
        throw new IllegalArgumentException("configuration: view '" + name + "': from() must name at least one type and"
            + " fingerprint() must not be null");
      }
      for (String type : new LinkedHashSet<>(view.from())) {
        if (!types.contains(type)) {
          throw new IllegalArgumentException("configuration: view '" + name + "' reads the unknown type '" + type
              + "'; the declared types are " + types);
        }
        definitions.byType.computeIfAbsent(type, t -> new ArrayList<>()).add(view);
      }
    }
    return definitions;
  }

  private static ViewDefinition instantiate(NodeConfig.ViewConfig view, Plugins plugins) {
    ViewDefinition definition = plugins.create(view.className(), ViewDefinition.class,
        "configuration: view '" + view.name() + "'");
    if (!view.name().equals(definition.name())) {
      throw new IllegalArgumentException("configuration: view '" + view.name() + "' names class " + view.className()
          + " whose name() is '" + definition.name() + "'");
    }
    return definition;
  }

  /** The view, or null. */
  public ViewDefinition get(String name) {
    return byName.get(name);
  }

  /** The views that entities of {@code type} count in, none when it feeds none. */
  public List<ViewDefinition> readingFrom(String type) {
    return byType.getOrDefault(type, List.of());
  }

  public Collection<ViewDefinition> all() {
    return byName.values();
  }
}
