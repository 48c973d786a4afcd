package io.kfold.fold;

import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;

/**
 * A record the fold must publish (a change or a dead letter), kept in the store's outbox in the
 * same write as the state it derives from, so that a crash between the write and the publish
 * loses nothing: the outbox is published again when the partition is assigned. A change is kept
 * as a reference to the event in the entity's history (a few bytes instead of a kilobyte on every
 * event), from which it is rebuilt in the rare case it must be published again; a dead letter is
 * kept whole.
 */
final class OutboxRecord {

  /** An outbox entry: a whole record, or a reference to the change of one event. */
  sealed interface Entry permits Whole, ChangeReference, ChangeWithContributions, Records {}

  record Whole(ProducerRecord<String, byte[]> record) implements Entry {}

  record ChangeReference(String type, String key, long version) implements Entry {}

  /** A change, and the view contributions to publish after it, in their order. */
  record ChangeWithContributions(ChangeReference change, List<ProducerRecord<String, byte[]>> contributions)
      implements Entry {}

  /** Records to publish in their order: a step of a view's build (see ViewBuilds). */
  record Records(List<ProducerRecord<String, byte[]>> records) implements Entry {}

  private static final byte WHOLE = 'W';
  private static final byte RECORDS = 'C';
  private static final byte REFERENCE = 'R';
  private static final byte WITH_CONTRIBUTIONS = 'V';

  private OutboxRecord() {}

  static byte[] reference(String type, String key, long version) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream(type.length() + key.length() + 16);
    try (DataOutputStream out = new DataOutputStream(bytes)) {
      out.writeByte(REFERENCE);
      out.writeUTF(type);
      out.writeUTF(key);
      out.writeLong(version);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return bytes.toByteArray();
  }

  static byte[] withContributions(String type, String key, long version,
                                  List<ProducerRecord<String, byte[]>> contributions) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream(256 * contributions.size());
    try (DataOutputStream out = new DataOutputStream(bytes)) {
      out.writeByte(WITH_CONTRIBUTIONS);
      out.writeUTF(type);
      out.writeUTF(key);
      out.writeLong(version);
      out.writeInt(contributions.size());
      for (ProducerRecord<String, byte[]> contribution : contributions) {
        writeRecord(out, contribution);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return bytes.toByteArray();
  }

  static byte[] records(List<ProducerRecord<String, byte[]>> records) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream(256 * records.size());
    try (DataOutputStream out = new DataOutputStream(bytes)) {
      out.writeByte(RECORDS);
      out.writeInt(records.size());
      for (ProducerRecord<String, byte[]> record : records) {
        writeRecord(out, record);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return bytes.toByteArray();
  }

  static byte[] encode(ProducerRecord<String, byte[]> record) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream(record.value().length + 64);
    try (DataOutputStream out = new DataOutputStream(bytes)) {
      out.writeByte(WHOLE);
      writeRecord(out, record);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return bytes.toByteArray();
  }

  private static void writeRecord(DataOutputStream out, ProducerRecord<String, byte[]> record) throws IOException {
    out.writeUTF(record.topic());
    out.writeInt(record.partition() == null ? -1 : record.partition());
    writeBytes(out, record.key() == null ? null : record.key().getBytes(java.nio.charset.StandardCharsets.UTF_8));
    writeBytes(out, record.value());
    Header[] headers = record.headers().toArray();
    out.writeInt(headers.length);
    for (Header header : headers) {
      out.writeUTF(header.key());
      writeBytes(out, header.value());
    }
  }

  static Entry decode(byte[] encoded) {
    try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(encoded))) {
      byte kind = in.readByte();
      if (kind == REFERENCE) {
        return new ChangeReference(in.readUTF(), in.readUTF(), in.readLong());
      }
      if (kind == WITH_CONTRIBUTIONS) {
        ChangeReference change = new ChangeReference(in.readUTF(), in.readUTF(), in.readLong());
        List<ProducerRecord<String, byte[]>> contributions = new ArrayList<>();
        for (int i = in.readInt(); i > 0; i--) {
          contributions.add(readRecord(in));
        }
        return new ChangeWithContributions(change, contributions);
      }
      if (kind == RECORDS) {
        List<ProducerRecord<String, byte[]>> records = new ArrayList<>();
        for (int i = in.readInt(); i > 0; i--) {
          records.add(readRecord(in));
        }
        return new Records(records);
      }
      return new Whole(readRecord(in));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static ProducerRecord<String, byte[]> readRecord(DataInputStream in) throws IOException {
    String topic = in.readUTF();
    int partition = in.readInt();
    byte[] key = readBytes(in);
    byte[] value = readBytes(in);
    RecordHeaders headers = new RecordHeaders();
    for (int i = in.readInt(); i > 0; i--) {
      headers.add(in.readUTF(), readBytes(in));
    }
    return new ProducerRecord<>(topic, partition < 0 ? null : partition, null,
        key == null ? null : new String(key, java.nio.charset.StandardCharsets.UTF_8), value, headers);
  }

  private static void writeBytes(DataOutputStream out, byte[] value) throws IOException {
    out.writeInt(value == null ? -1 : value.length);
    if (value != null) {
      out.write(value);
    }
  }

  private static byte[] readBytes(DataInputStream in) throws IOException {
    int length = in.readInt();
    return length < 0 ? null : in.readNBytes(length);
  }
}
