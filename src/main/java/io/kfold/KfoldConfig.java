package io.kfold;

import io.kfold.config.ConfigSource;
import io.kfold.config.NodeConfig;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * The configuration of a kfold node, for {@link KfoldNode#start}: the defaults bundled with kfold with
 * the user's YAML over them (the keys are those of the runnable kfold's {@code KFOLD_CONFIG} file, and
 * are checked alike: an unknown key or a bad value fails here, each problem named). A value is never
 * quoted in a message if it is a secret.
 */
public final class KfoldConfig {

  private final NodeConfig node;

  private KfoldConfig(NodeConfig node) {
    this.node = node;
  }

  /**
   * {@code yaml} over the bundled defaults. {@code KFOLD_*} variables do not change it (the code names
   * its configuration); {@code ${env:NAME}} and {@code ${file:path}} references in it are resolved.
   *
   * @throws IllegalArgumentException naming each problem
   */
  public static KfoldConfig fromYaml(String yaml) {
    return of(ConfigSource.fromYaml("given in code", yaml, System.getenv()));
  }

  /**
   * {@code yaml} over the bundled defaults, and {@code env}'s {@code KFOLD_*} variables over both, as
   * the runnable kfold reads its {@code KFOLD_CONFIG} file: for an application that lets its operators
   * set the port, the data folder or the Kafka cluster from the environment.
   *
   * @throws IllegalArgumentException naming each problem
   */
  public static KfoldConfig fromYaml(String yaml, Map<String, String> env) {
    return of(ConfigSource.fromYaml("given in code", yaml, env, env));
  }

  /** The same, the YAML read from {@code file}. */
  public static KfoldConfig fromFile(Path file) {
    String yaml;
    try {
      yaml = Files.readString(file, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new IllegalArgumentException("cannot read configuration " + file + ": " + e);
    }
    return of(ConfigSource.fromYaml(file.toString(), yaml, System.getenv()));
  }

  /**
   * The configuration exactly as the runnable kfold reads it from {@code env}: the file named by
   * {@code KFOLD_CONFIG} over the defaults, the {@code KFOLD_*} variables over both.
   */
  public static KfoldConfig load(Map<String, String> env) {
    return of(ConfigSource.read(env));
  }

  private static KfoldConfig of(ConfigSource source) {
    return new KfoldConfig(NodeConfig.from(source));
  }

  /** The application's name: the prefix of its topics and consumer groups. */
  public String app() {
    return node.app();
  }

  /** Where the node keeps its store and its id (and the local broker its data, when one is started). */
  public Path dataDir() {
    return node.dataDir();
  }

  /**
   * The Kafka cluster's bootstrap servers, or an empty string when none is configured: the runnable
   * kfold then starts a local broker, and an application may do the same with {@link LocalKafka}.
   */
  public String kafkaBootstrap() {
    return node.kafka().embedded() ? "" : node.kafka().bootstrap();
  }

  /** The same configuration on the Kafka cluster at {@code bootstrap} (host:port, comma-separated). */
  public KfoldConfig withBootstrap(String bootstrap) {
    return new KfoldConfig(node.withBootstrap(bootstrap));
  }

  /** The typed configuration inside: for kfold's own classes of this package. */
  NodeConfig node() {
    return node;
  }

  /** The application's name only: the rest may hold secrets. */
  @Override
  public String toString() {
    return "KfoldConfig[app=" + node.app() + "]";
  }
}
