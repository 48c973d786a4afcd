package io.kfold.log;

import io.kfold.config.NodeConfig;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.common.errors.AuthorizationException;
import org.apache.kafka.common.errors.SaslAuthenticationException;
import org.apache.kafka.common.errors.SslAuthenticationException;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.KafkaException;

import java.security.cert.CertPathBuilderException;
import java.security.cert.CertPathValidatorException;
import java.time.Duration;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * The first thing a node does with Kafka: asks the cluster who its brokers are, within a bound. A
 * cluster that refuses kfold's credentials, whose certificate kfold does not trust, or that does not
 * answer is reported in a sentence that says which and what to check, before any producer or
 * consumer starts (a producer's first send may block up to {@code max.block.ms}, a consumer retries
 * for ever), instead of as whichever exception a later step happens to meet first.
 */
public final class KafkaCheck {

  /** How long the check waits for an answer: far above a healthy cluster's, below what looks like a hang. */
  public static final Duration TIMEOUT = Duration.ofSeconds(20);

  /** Kafka could not be used; the message says why and what to check, never a secret. */
  public static final class Failed extends IllegalStateException {
    Failed(String message) {
      super(message);
    }
  }

  private KafkaCheck() {}

  /**
   * The node's first admin client, to check with and then to create its topics with. A client that
   * cannot even be built (a truststore file that is missing, a JAAS line Kafka cannot parse) fails
   * the same way as a check.
   */
  public static Admin admin(NodeConfig.Kafka kafka, String clientId) {
    try {
      return Admin.create(KafkaClients.admin(kafka, clientId));
    } catch (KafkaException e) {
      throw new Failed("cannot set up a Kafka client for " + kafka.bootstrap() + " from kafka.properties: "
          + rootMessage(e));
    }
  }

  /** Blocks up to {@link #TIMEOUT}: run it on a worker thread. */
  public static void check(Admin admin, NodeConfig.Kafka kafka) {
    int timeoutMs = (int) TIMEOUT.toMillis();
    try {
      // The call's own deadline ends it; the wait's is only a backstop.
      admin.describeCluster(new DescribeClusterOptions().timeoutMs(timeoutMs)).nodes()
          .get(timeoutMs + 5000L, TimeUnit.MILLISECONDS);
    } catch (ExecutionException e) {
      throw failure(kafka, e.getCause());
    } catch (java.util.concurrent.TimeoutException e) {
      throw failure(kafka, new TimeoutException("no answer"));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new Failed("interrupted while connecting to Kafka at " + kafka.bootstrap());
    }
  }

  /** The sentence for what went wrong; the causes' messages are Kafka's and the JDK's, which hold no password. */
  static Failed failure(NodeConfig.Kafka kafka, Throwable cause) {
    String at = "Kafka at " + kafka.bootstrap();
    String protocol = kafka.properties().getOrDefault(CommonClientConfigs.SECURITY_PROTOCOL_CONFIG, "PLAINTEXT");
    if (cause instanceof SaslAuthenticationException) {
      return new Failed("Kafka refused kfold's credentials (SASL authentication failed) at " + kafka.bootstrap()
          + ": check the user and password in kafka.properties' sasl.jaas.config and that sasl.mechanism ("
          + kafka.properties().getOrDefault("sasl.mechanism", "GSSAPI") + ") is one the broker enables. Kafka said: "
          + cause.getMessage());
    }
    if (cause instanceof SslAuthenticationException) {
      if (untrusted(cause)) {
        return new Failed("TLS handshake with " + at + " failed: the broker's certificate is not trusted. Set "
            + "kafka.properties' ssl.truststore.location (with ssl.truststore.type PEM for a PEM file) to the "
            + "certificate of the authority that signed it. The JDK said: " + handshakeMessage(cause));
      }
      return new Failed("TLS handshake with " + at + " failed: " + handshakeMessage(cause));
    }
    if (cause instanceof AuthorizationException) {
      return new Failed(at + " authenticated kfold but refused it: " + cause.getMessage()
          + "; grant its user the ACLs kfold needs");
    }
    if (cause instanceof TimeoutException) {
      return new Failed("no answer from " + at + " within " + TIMEOUT.toSeconds() + " s: check kafka.bootstrap, that "
          + "the brokers run and can be reached from here, and that kafka.properties' security.protocol (" + protocol
          + ") is the one of the listener at that address");
    }
    return new Failed("cannot use " + at + ": " + rootMessage(cause));
  }

  /** Whether the handshake failed on the certificate chain (no trusted authority), not on anything else. */
  private static boolean untrusted(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      // A hostname that the certificate does not name is a CertificateException too, but not one of these.
      if (t instanceof CertPathBuilderException || t instanceof CertPathValidatorException) {
        return true;
      }
    }
    return false;
  }

  /** The JDK's account of the handshake ("PKIX path validation failed: ..."), which says more than its root cause. */
  private static String handshakeMessage(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof javax.net.ssl.SSLException) {
        return t.getMessage();
      }
    }
    return rootMessage(e);
  }

  private static String rootMessage(Throwable e) {
    Throwable root = e;
    while (root.getCause() != null && root.getCause() != root) {
      root = root.getCause();
    }
    return root.getClass().getSimpleName() + ": " + root.getMessage();
  }
}
