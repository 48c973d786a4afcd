package io.kfold.cluster;

import io.kfold.config.NodeConfig;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.net.PemTrustOptions;
import io.vertx.ext.web.client.WebClientOptions;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;

/**
 * Options of the clients a node sends requests to other nodes with. To a node whose URL is https
 * they speak TLS, and verify its certificate against {@code http.tls.trust} (the JVM's CAs when
 * empty), its host name included: a node that cannot show a certificate for its URL gets nothing.
 */
public final class NodeClients {

  private NodeClients() {}

  public static WebClientOptions web(NodeConfig config) {
    return trusting(new WebClientOptions(), config.http().tls());
  }

  public static HttpClientOptions http(NodeConfig config) {
    return trusting(new HttpClientOptions(), config.http().tls());
  }

  /**
   * Fails, naming the file and why, when {@code http.tls.trust} is set but holds no certificate
   * that can be read: else every forwarded request would fail later. Blocking.
   */
  public static void checkTrust(NodeConfig.Tls tls) {
    if (tls.trust().isEmpty()) {
      return;
    }
    String problem;
    try (InputStream in = Files.newInputStream(Path.of(tls.trust()))) {
      problem = CertificateFactory.getInstance("X.509").generateCertificates(in).isEmpty()
          ? "holds no PEM certificate (BEGIN CERTIFICATE)" : null;
    } catch (NoSuchFileException e) {
      problem = "does not exist";
    } catch (IOException e) {
      problem = "cannot be read: " + e;
    } catch (CertificateException e) {
      problem = "holds no valid PEM certificate: " + e.getMessage();
    }
    if (problem != null) {
      throw new IllegalArgumentException("configuration: 'http.tls.trust': the file " + tls.trust() + " " + problem);
    }
  }

  private static <T extends HttpClientOptions> T trusting(T options, NodeConfig.Tls tls) {
    // Vert.x reads the trust file when it first builds a TLS context, on a worker thread.
    options.setVerifyHost(true);
    if (!tls.trust().isEmpty()) {
      options.setTrustOptions(new PemTrustOptions().addCertPath(tls.trust()));
    }
    return options;
  }
}
