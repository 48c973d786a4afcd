package io.kfold.log;

import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

import java.io.OutputStream;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.Date;
import java.util.List;
import java.util.Map;

/**
 * A real broker whose clients must come over SASL_SSL: SCRAM-SHA-512 over TLS, with a certificate
 * made here for localhost and 127.0.0.1. Its PLAINTEXT listener serves only the broker itself and
 * the readiness check; kfold is given {@link #bootstrap()}, the secured one.
 */
final class SaslSslBroker implements AutoCloseable {

  static final String USER = "kfold";
  static final String MECHANISM = "SCRAM-SHA-512";
  private static final String STORE_PASSWORD = "broker-keystore-pass";

  private final LocalBroker broker;
  private final String bootstrap;
  private final Path trustedPem;
  private final Path untrustedPem;

  private SaslSslBroker(LocalBroker broker, String bootstrap, Path trustedPem, Path untrustedPem) {
    this.broker = broker;
    this.bootstrap = bootstrap;
    this.trustedPem = trustedPem;
    this.untrustedPem = untrustedPem;
  }

  /** Starts the broker in {@code dir} with {@link #USER} and {@code password}; stopped also when the JVM exits. */
  static SaslSslBroker start(Path dir, String password) throws Exception {
    Files.createDirectories(dir);
    KeyPair brokerKey = keyPair();
    X509Certificate brokerCertificate = selfSigned(brokerKey);
    Path keystore = dir.resolve("broker.p12");
    KeyStore store = KeyStore.getInstance("PKCS12");
    store.load(null, null);
    store.setKeyEntry("broker", brokerKey.getPrivate(), STORE_PASSWORD.toCharArray(), new Certificate[] {brokerCertificate});
    try (OutputStream out = Files.newOutputStream(keystore)) {
      store.store(out, STORE_PASSWORD.toCharArray());
    }
    Path trusted = writePem(dir.resolve("broker-ca.pem"), brokerCertificate);
    // The same name, another key: what a client sees when it trusts some other authority.
    Path untrusted = writePem(dir.resolve("other-ca.pem"), selfSigned(keyPair()));

    int port = LocalBroker.freePort();
    Map<String, String> properties = Map.of(
        "sasl.enabled.mechanisms", MECHANISM,
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config",
        "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        "ssl.keystore.type", "PKCS12",
        "ssl.keystore.location", keystore.toString(),
        "ssl.keystore.password", STORE_PASSWORD,
        "ssl.key.password", STORE_PASSWORD);
    LocalBroker broker = LocalBroker.start(dir.resolve("broker"), LocalBroker.defaultLibs(), 0,
        new LocalBroker.Extras(Map.of("SASL_SSL", port), properties,
            List.of(MECHANISM + "=[name=" + USER + ",password=" + password + "]")));
    // A broker must not outlive its tests, also when the test JVM is stopped from outside.
    Runtime.getRuntime().addShutdownHook(new Thread(broker::close, "kfold-sasl-ssl-broker-stop"));
    return new SaslSslBroker(broker, "127.0.0.1:" + port, trusted, untrusted);
  }

  /** The SASL_SSL listener. */
  String bootstrap() {
    return bootstrap;
  }

  /** The broker's certificate as PEM: a truststore that trusts it. */
  Path trustedPem() {
    return trustedPem;
  }

  /** A certificate that did not sign the broker's: a truststore that does not trust it. */
  Path untrustedPem() {
    return untrustedPem;
  }

  @Override
  public void close() {
    broker.close();
  }

  private static KeyPair keyPair() throws Exception {
    KeyPairGenerator generator = KeyPairGenerator.getInstance("RSA");
    generator.initialize(2048);
    return generator.generateKeyPair();
  }

  /** A certificate for localhost and 127.0.0.1, valid from yesterday to tomorrow, signed by its own key. */
  private static X509Certificate selfSigned(KeyPair key) throws Exception {
    X500Name name = new X500Name("CN=localhost");
    Instant now = Instant.now();
    JcaX509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(name, BigInteger.valueOf(now.toEpochMilli()),
        Date.from(now.minus(Duration.ofDays(1))), Date.from(now.plus(Duration.ofDays(1))), name, key.getPublic());
    builder.addExtension(Extension.subjectAlternativeName, false, new GeneralNames(new GeneralName[] {
        new GeneralName(GeneralName.dNSName, "localhost"), new GeneralName(GeneralName.iPAddress, "127.0.0.1")}));
    return new JcaX509CertificateConverter()
        .getCertificate(builder.build(new JcaContentSignerBuilder("SHA256withRSA").build(key.getPrivate())));
  }

  private static Path writePem(Path file, X509Certificate certificate) throws Exception {
    String body = Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII)).encodeToString(certificate.getEncoded());
    Files.writeString(file, "-----BEGIN CERTIFICATE-----\n" + body + "\n-----END CERTIFICATE-----\n", StandardCharsets.US_ASCII);
    return file;
  }
}
