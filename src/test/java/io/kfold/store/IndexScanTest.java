package io.kfold.store;

import io.kfold.TestNodes;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/** Index entries in a real RocksDB store: their order, ranges, positions and snapshots. */
class IndexScanTest {

  private RocksEntityStore store;

  @BeforeEach
  void setUp() {
    store = new RocksEntityStore(TestNodes.tempDir("index-scan"));
  }

  @AfterEach
  void tearDown() {
    store.close();
  }

  private record Entry(byte[] value, String key) {}

  private static final Comparator<Entry> ORDER = Comparator.<Entry, byte[]>comparing(Entry::value, Arrays::compareUnsigned)
      .thenComparing(e -> e.key().getBytes(StandardCharsets.UTF_8), Arrays::compareUnsigned);

  @Test
  @DisplayName("entries come back in (value, key) byte order, whatever bytes the values hold (0x00, 0xFF, prefixes)")
  void orderAndRanges() {
    Random random = new Random(7);
    List<Entry> entries = new ArrayList<>();
    StoreBatch batch = new StoreBatch();
    for (int i = 0; i < 2000; i++) {
      byte[] value = new byte[random.nextInt(4)];
      for (int b = 0; b < value.length; b++) {
        value[b] = (byte) new int[] {0x00, 0x01, 0xFF, 'a', 'b'}[random.nextInt(5)];
      }
      String key = "k" + random.nextInt(50);
      if (entries.stream().noneMatch(e -> Arrays.equals(e.value(), value) && e.key().equals(key))) {
        entries.add(new Entry(value, key));
        batch.putIndexEntry("t", "ix", value, key);
      }
    }
    batch.putIndexEntry("t", "other", new byte[] {0}, "x");  // another index of the same type
    batch.putIndexEntry("u", "ix", new byte[] {0}, "x");      // the same index name, another type
    store.write(batch);
    entries.sort(ORDER);
    assertThat(scanAll(null, null, 7)).containsExactlyElementsOf(entries.stream().map(IndexScanTest::text).toList());

    for (int round = 0; round < 50; round++) {
      byte[] from = entries.get(random.nextInt(entries.size())).value();
      byte[] to = entries.get(random.nextInt(entries.size())).value();
      List<String> expected = entries.stream()
          .filter(e -> Arrays.compareUnsigned(e.value(), from) >= 0 && Arrays.compareUnsigned(e.value(), to) < 0)
          .map(IndexScanTest::text).toList();
      assertThat(scanAll(from, to, 1 + random.nextInt(30))).containsExactlyElementsOf(expected);
    }
  }

  @Test
  @DisplayName("a deleted entry is gone; a scan reads each entity's state from the same snapshot as its entry")
  void deletesAndStates() {
    store.write(new StoreBatch().putIndexEntry("t", "ix", bytes("a"), "1").putIndexEntry("t", "ix", bytes("b"), "2")
        .putState("t", "1", new StoredEntity(3, 0, null, bytes("{\"v\":\"a\"}"))));
    store.write(new StoreBatch().deleteIndexEntry("t", "ix", bytes("b"), "2"));
    List<IndexScan.Entry> found = store.scanIndex(new IndexScan("t", "ix", null, null, null, 10, true));
    assertThat(found).hasSize(1);
    assertThat(found.get(0).key()).isEqualTo("1");
    assertThat(found.get(0).entity().version()).isEqualTo(3);
    assertThat(store.scanIndex(IndexScan.allEntities("t", null, 10, false))).isEmpty();
  }

  /** Every page of a scan with pages of {@code pageSize}, resumed after each page's last entry. */
  private List<String> scanAll(byte[] from, byte[] to, int pageSize) {
    List<String> all = new ArrayList<>();
    IndexScan.Position after = null;
    while (true) {
      List<IndexScan.Entry> page = store.scanIndex(new IndexScan("t", "ix", from, to, after, pageSize, false));
      page.forEach(e -> all.add(text(new Entry(e.value(), e.key()))));
      if (page.size() < pageSize) {
        return all;
      }
      after = page.get(page.size() - 1).position();
    }
  }

  private static String text(Entry e) {
    return Arrays.toString(e.value()) + "/" + e.key();
  }

  private static byte[] bytes(String text) {
    return text.getBytes(StandardCharsets.UTF_8);
  }
}
