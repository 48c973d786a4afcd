package io.kfold.http;

import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.openssl.jcajce.JcaPKCS8Generator;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.spec.ECGenParameterSpec;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Date;
import java.util.concurrent.atomic.AtomicLong;

/** A certificate authority made by a test, and server certificates for localhost and 127.0.0.1 signed by it, as PEM. */
public final class TestCa {

  private static final AtomicLong SERIALS = new AtomicLong(System.currentTimeMillis());

  private final KeyPair keys;
  private final X509CertificateHolder certificate;

  /** A server certificate and its private key, as the PEM text of their files. */
  public record Issued(String certificatePem, String keyPem, BigInteger serial) {

    /** Writes the certificate and the key to these files, the certificate first. */
    public void writeTo(Path certificate, Path key) {
      write(certificate, certificatePem);
      write(key, keyPem);
    }
  }

  private TestCa(KeyPair keys, X509CertificateHolder certificate) {
    this.keys = keys;
    this.certificate = certificate;
  }

  public static TestCa create(String name) {
    KeyPair keys = keyPair();
    X500Name subject = new X500Name("CN=" + name);
    try {
      var builder = new JcaX509v3CertificateBuilder(subject, BigInteger.valueOf(SERIALS.incrementAndGet()), notBefore(),
          notAfter(), subject, keys.getPublic())
          .addExtension(Extension.basicConstraints, true, new BasicConstraints(true))
          .addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
      return new TestCa(keys, builder.build(signer(keys)));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** A new key and a certificate for it, for localhost and 127.0.0.1, subject CN={@code name}, a serial of its own. */
  public Issued issue(String name) {
    KeyPair server = keyPair();
    BigInteger serial = BigInteger.valueOf(SERIALS.incrementAndGet());
    try {
      var builder = new JcaX509v3CertificateBuilder(certificate.getSubject(), serial, notBefore(), notAfter(),
          new X500Name("CN=" + name), server.getPublic())
          .addExtension(Extension.subjectAlternativeName, false, new GeneralNames(new GeneralName[] {
              new GeneralName(GeneralName.dNSName, "localhost"), new GeneralName(GeneralName.iPAddress, "127.0.0.1")}))
          .addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
      X509CertificateHolder issued = builder.build(signer(keys));
      return new Issued(pem(issued), pem(new JcaPKCS8Generator(server.getPrivate(), null).generate()), serial);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The CA's certificate, which clients trust. */
  public void writeCertificate(Path file) {
    write(file, pem(certificate));
  }

  private static KeyPair keyPair() {
    try {
      KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
      generator.initialize(new ECGenParameterSpec("secp256r1"));
      return generator.generateKeyPair();
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  private static ContentSigner signer(KeyPair keys) {
    try {
      return new JcaContentSignerBuilder("SHA256withECDSA").build(keys.getPrivate());
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  private static Date notBefore() {
    return Date.from(Instant.now().minus(1, ChronoUnit.HOURS));
  }

  private static Date notAfter() {
    return Date.from(Instant.now().plus(1, ChronoUnit.DAYS));
  }

  private static String pem(Object object) {
    StringWriter text = new StringWriter();
    try (JcaPEMWriter writer = new JcaPEMWriter(text)) {
      writer.writeObject(object);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return text.toString();
  }

  private static void write(Path file, String text) {
    try {
      Files.writeString(file, text, StandardCharsets.US_ASCII);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
