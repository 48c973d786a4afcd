package io.kfold.http;

import io.kfold.config.NodeConfig;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.net.PemKeyCertOptions;

import javax.net.ssl.X509KeyManager;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.Collections;

/**
 * The HTTP API's certificate chain and private key, as read from their PEM files and checked to
 * belong together: a key of another certificate would only show as failed handshakes, for every
 * client, long after the start. Reading is blocking: on a worker thread only.
 *
 * @param certificate the server's own certificate, the chain's first
 */
public record ServerCertificate(Buffer chain, Buffer key, X509Certificate certificate) {

  /** Reads and checks the files that {@code tls} names; fails with a message naming the file and what is wrong. */
  public static ServerCertificate read(Vertx vertx, NodeConfig.Tls tls) {
    return check(vertx, tls, file("http.tls.certificate", tls.certificate()), file("http.tls.key", tls.key()));
  }

  /** The same, unless the files hold what {@code current} was read from: then null. */
  static ServerCertificate readIfChanged(Vertx vertx, NodeConfig.Tls tls, ServerCertificate current) {
    Buffer chain = file("http.tls.certificate", tls.certificate());
    Buffer key = file("http.tls.key", tls.key());
    return chain.equals(current.chain()) && key.equals(current.key()) ? null : check(vertx, tls, chain, key);
  }

  /** The files' content, as the server's key and certificate options. */
  PemKeyCertOptions options() {
    return new PemKeyCertOptions().addCertValue(chain).addKeyValue(key);
  }

  /** Which certificate this is, for the log: never anything of the key. */
  String describe() {
    return "subject '" + certificate.getSubjectX500Principal().getName() + "', serial "
        + certificate.getSerialNumber().toString(16) + ", valid until " + certificate.getNotAfter().toInstant();
  }

  private static ServerCertificate check(Vertx vertx, NodeConfig.Tls tls, Buffer chain, Buffer key) {
    X509Certificate certificate;
    try {
      certificate = (X509Certificate) CertificateFactory.getInstance("X.509")
          .generateCertificates(new ByteArrayInputStream(chain.getBytes())).stream().findFirst().orElse(null);
    } catch (Exception e) {
      throw problem("http.tls.certificate", tls.certificate(), "holds no valid PEM certificate: " + e.getMessage());
    }
    if (certificate == null) {
      throw problem("http.tls.certificate", tls.certificate(), "holds no PEM certificate (BEGIN CERTIFICATE)");
    }
    // The certificates parse: whatever the loader refuses now is the key.
    PemKeyCertOptions options = new PemKeyCertOptions().addCertValue(chain).addKeyValue(key);
    PrivateKey privateKey;
    try {
      KeyStore store = options.loadKeyStore(vertx);
      X509KeyManager keys = (X509KeyManager) options.getKeyManagerFactory(vertx).getKeyManagers()[0];
      String alias = Collections.list(store.aliases()).stream().filter(a -> isKey(store, a)).findFirst().orElseThrow();
      privateKey = keys.getPrivateKey(alias);
    } catch (Exception e) {
      throw problem("http.tls.key", tls.key(), "holds no valid unencrypted PEM private key (BEGIN PRIVATE KEY, or BEGIN"
          + " RSA PRIVATE KEY): " + e);
    }
    if (privateKey == null || !signsFor(privateKey, certificate.getPublicKey())) {
      throw problem("http.tls.key", tls.key(), "is not the private key of the certificate in " + tls.certificate()
          + " (subject '" + certificate.getSubjectX500Principal().getName() + "')");
    }
    return new ServerCertificate(chain, key, certificate);
  }

  private static boolean isKey(KeyStore store, String alias) {
    try {
      return store.isKeyEntry(alias);
    } catch (Exception e) {
      return false;
    }
  }

  /** Whether what the key signs, the certificate's public key verifies: the two form a pair. */
  private static boolean signsFor(PrivateKey key, PublicKey certified) {
    String algorithm = switch (key.getAlgorithm()) {
      case "RSA" -> "SHA256withRSA";
      case "EC" -> "SHA256withECDSA";
      default -> key.getAlgorithm();  // EdDSA, Ed25519: the key's own
    };
    try {
      byte[] challenge = new byte[32];
      new SecureRandom().nextBytes(challenge);
      Signature signer = Signature.getInstance(algorithm);
      signer.initSign(key);
      signer.update(challenge);
      byte[] signature = signer.sign();
      Signature verifier = Signature.getInstance(algorithm);
      verifier.initVerify(certified);
      verifier.update(challenge);
      return verifier.verify(signature);
    } catch (Exception e) {
      return false;  // a key of another algorithm than the certificate's
    }
  }

  private static Buffer file(String key, String path) {
    try {
      return Buffer.buffer(Files.readAllBytes(Path.of(path)));
    } catch (NoSuchFileException e) {
      throw problem(key, path, "does not exist");
    } catch (AccessDeniedException e) {
      throw problem(key, path, "cannot be read: permission denied");
    } catch (IOException e) {
      throw problem(key, path, "cannot be read: " + e);
    }
  }

  private static IllegalArgumentException problem(String key, String path, String what) {
    return new IllegalArgumentException("configuration: '" + key + "': the file " + path + " " + what);
  }

  @Override
  public String toString() {
    return describe();  // a record's own would print the key
  }
}
