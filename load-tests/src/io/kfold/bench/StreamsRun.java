package io.kfold.bench;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * The Kafka Streams baseline: {@code StreamsFoldApp} (load-tests/streams) folding the same input in a
 * JVM of its own, on the classpath run.sh resolved for it. A separate JVM because kafka-streams brings
 * a rocksdbjni other than kfold's, and two RocksDB native libraries do not share one classpath.
 *
 * <p>The app measures itself, from just before it creates its {@code KafkaStreams} to the last event
 * reduced, so the JVM's own start is not part of its figure; it starts cold, and so does kfold's
 * fold (see {@link KfoldRun#inOwnJvm}).
 */
final class StreamsRun {

  static final List<String> GUARANTEES = List.of("at_least_once", "exactly_once_v2");
  private static final long TIMEOUT_SECONDS = 1_000;

  private StreamsRun() {}

  /** A short name for application ids and the table. */
  static String shortName(String guarantee) {
    return switch (guarantee) {
      case "at_least_once" -> "alos";
      case "exactly_once_v2" -> "eos-v2";
      default -> guarantee;
    };
  }

  static Map<String, Object> run(String classpath, String bootstrap, Input input, String guarantee, Path workDir,
                                 long brokerPid) throws Exception {
    // Its own application id and a fresh state folder: a group and a store that start from nothing.
    String applicationId = input.app + "-streams-" + shortName(guarantee);
    Path stateDir = Files.createDirectories(workDir.resolve(applicationId));
    Path resultFile = workDir.resolve(applicationId + "-result.json");

    List<String> command = ChildJvm.command(classpath, "io.kfold.bench.StreamsFoldApp", List.of(
        "--bootstrap", bootstrap,
        "--topic", input.topic,
        "--application-id", applicationId,
        "--state-dir", stateDir.toString(),
        "--guarantee", guarantee,
        "--events", Long.toString(input.events),
        "--keys", Integer.toString(input.keys),
        "--broker-pid", Long.toString(brokerPid),
        "--result", resultFile.toString()));
    ChildJvm.run(command, TIMEOUT_SECONDS, "the Streams app (" + guarantee + ")");
    return ChildJvm.readResult(resultFile);
  }
}
