package io.kfold.auth;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.time.Clock;
import java.util.HexFormat;

/**
 * Proves that a request comes from a node of the cluster: an HMAC-SHA256, keyed by the secret the
 * nodes share, of the node's name, the time, the method and the URI, sent as
 * {@code <millis>.<hex>}. The secret itself never travels; a proof more than {@link #MAX_AGE_MS}
 * from the receiver's clock is refused, so a copied one soon stops working.
 */
public final class NodeProof {

  /** The header that carries the proof, beside the node's name in {@code X-Kfold-Forwarded-By}. */
  public static final String HEADER = "X-Kfold-Node-Proof";
  /** How far the sender's clock may be from the receiver's. Nodes keep their clocks in sync (NTP). */
  public static final long MAX_AGE_MS = 60_000;

  private final SecretKeySpec key;
  private final Clock clock;

  /** {@code secret} empty: no authentication (mode none), no proofs. */
  public NodeProof(String secret, Clock clock) {
    this.key = secret.isEmpty() ? null : new SecretKeySpec(secret.getBytes(StandardCharsets.UTF_8), "HmacSHA256");
    this.clock = clock;
  }

  public boolean enabled() {
    return key != null;
  }

  /** The proof for a request {@code node} sends now; null when the cluster runs without authentication. */
  public String sign(String node, String method, String uri) {
    if (key == null) {
      return null;
    }
    long now = clock.millis();
    return now + "." + HexFormat.of().formatHex(mac(node, now, method, uri));
  }

  /** Whether {@code proof} is one that {@code node} made for this request, recently. */
  public boolean verify(String node, String proof, String method, String uri) {
    if (key == null || node == null || proof == null) {
      return false;
    }
    int dot = proof.indexOf('.');
    if (dot < 0) {
      return false;
    }
    long time;
    byte[] given;
    try {
      time = Long.parseLong(proof.substring(0, dot));
      given = HexFormat.of().parseHex(proof.substring(dot + 1));
    } catch (IllegalArgumentException e) {
      return false;
    }
    if (Math.abs(clock.millis() - time) > MAX_AGE_MS) {
      return false;
    }
    return MessageDigest.isEqual(mac(node, time, method, uri), given);
  }

  private byte[] mac(String node, long time, String method, String uri) {
    try {
      Mac mac = Mac.getInstance("HmacSHA256");
      mac.init(key);
      return mac.doFinal((node + "\n" + time + "\n" + method + "\n" + uri).getBytes(StandardCharsets.UTF_8));
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("HmacSHA256 is part of every Java runtime", e);
    }
  }
}
