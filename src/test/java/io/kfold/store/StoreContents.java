package io.kfold.store;

import org.rocksdb.ColumnFamilyDescriptor;
import org.rocksdb.ColumnFamilyHandle;
import org.rocksdb.ColumnFamilyOptions;
import org.rocksdb.DBOptions;
import org.rocksdb.Options;
import org.rocksdb.RocksDB;
import org.rocksdb.RocksDBException;
import org.rocksdb.RocksIterator;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.SortedSet;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * Everything a store folder holds, read the way RocksDB itself reads it, for tests that compare two
 * stores byte for byte: by column family, each key and value in hex (so that the maps sort keys as
 * RocksDB does, and a difference prints readably). Opens the folder read-only: it may belong to a
 * node that still runs, or to one that was killed (its write-ahead log is read too).
 */
public final class StoreContents {

  static {
    RocksDB.loadLibrary();
  }

  private StoreContents() {}

  public static SortedMap<String, SortedMap<String, String>> read(Path store) throws RocksDBException {
    List<byte[]> names;
    try (Options options = new Options()) {
      names = RocksDB.listColumnFamilies(options, store.toString());
    }
    SortedMap<String, SortedMap<String, String>> contents = new TreeMap<>();
    List<ColumnFamilyHandle> handles = new ArrayList<>();
    try (ColumnFamilyOptions columnOptions = new ColumnFamilyOptions(); DBOptions options = new DBOptions()) {
      List<ColumnFamilyDescriptor> descriptors = names.stream()
          .map(name -> new ColumnFamilyDescriptor(name, columnOptions)).toList();
      try (RocksDB db = RocksDB.openReadOnly(options, store.toString(), descriptors, handles)) {
        for (int i = 0; i < handles.size(); i++) {
          SortedMap<String, String> column = new TreeMap<>();
          try (RocksIterator it = db.newIterator(handles.get(i))) {
            for (it.seekToFirst(); it.isValid(); it.next()) {
              column.put(HexFormat.of().formatHex(it.key()), HexFormat.of().formatHex(it.value()));
            }
            it.status();
          }
          contents.put(new String(names.get(i), StandardCharsets.UTF_8), column);
        }
      } finally {
        handles.forEach(ColumnFamilyHandle::close);
      }
    }
    return contents;
  }

  /**
   * The entity types of a column whose keys start with an entity's key (states, events,
   * idempotency): its length-prefixed type name.
   */
  public static SortedSet<String> entityTypes(Map<String, String> column) {
    SortedSet<String> types = new TreeSet<>();
    for (String key : column.keySet()) {
      ByteBuffer bytes = ByteBuffer.wrap(HexFormat.of().parseHex(key));
      byte[] type = new byte[bytes.getShort()];
      bytes.get(type);
      types.add(new String(type, StandardCharsets.UTF_8));
    }
    return types;
  }
}
