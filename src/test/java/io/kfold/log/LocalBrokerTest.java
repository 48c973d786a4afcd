package io.kfold.log;

import io.kfold.TestNodes;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

import static org.assertj.core.api.Assertions.assertThat;

class LocalBrokerTest {

  @Test
  @DisplayName("a broker left running by a killed kfold is stopped on the next start, never duplicated, and keeps its port")
  void leftoverBrokerIsReplaced() throws Exception {
    Path dir = TestNodes.tempDir("leftover");
    LocalBroker first = LocalBroker.start(dir, LocalBroker.defaultLibs(), 0);
    long firstPid = first.pid();
    // kfold killed here: nothing stops `first`; its pid file stays behind.
    assertThat(Files.readString(dir.resolve("broker.pid")).trim()).isEqualTo(Long.toString(firstPid));
    try (LocalBroker second = LocalBroker.start(dir, LocalBroker.defaultLibs(), 0)) {
      Optional<ProcessHandle> old = ProcessHandle.of(firstPid);
      assertThat(old.map(ProcessHandle::isAlive).orElse(false)).as("the leftover broker is stopped").isFalse();
      assertThat(second.pid()).isNotEqualTo(firstPid);
      assertThat(second.bootstrap()).isEqualTo(first.bootstrap());
      assertThat(Files.readString(dir.resolve("broker.pid")).trim()).isEqualTo(Long.toString(second.pid()));
    }
    assertThat(Files.exists(dir.resolve("broker.pid"))).isFalse();
  }
}
