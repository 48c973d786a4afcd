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
  sealed interface Entry permits Whole, ChangeReference {}

  record Whole(ProducerRecord<String, byte[]> record) implements Entry {}

  record ChangeReference(String type, String key, long version) implements Entry {}

  private static final byte WHOLE = 'W';
  private static final byte REFERENCE = 'R';

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

  static byte[] encode(ProducerRecord<String, byte[]> record) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream(record.value().length + 64);
    try (DataOutputStream out = new DataOutputStream(bytes)) {
      out.writeByte(WHOLE);
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
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return bytes.toByteArray();
  }

  static Entry decode(byte[] encoded) {
    try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(encoded))) {
      if (in.readByte() == REFERENCE) {
        return new ChangeReference(in.readUTF(), in.readUTF(), in.readLong());
      }
      String topic = in.readUTF();
      int partition = in.readInt();
      byte[] key = readBytes(in);
      byte[] value = readBytes(in);
      RecordHeaders headers = new RecordHeaders();
      for (int i = in.readInt(); i > 0; i--) {
        headers.add(in.readUTF(), readBytes(in));
      }
      return new Whole(new ProducerRecord<>(topic, partition < 0 ? null : partition, null,
          key == null ? null : new String(key, java.nio.charset.StandardCharsets.UTF_8), value, headers));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
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
