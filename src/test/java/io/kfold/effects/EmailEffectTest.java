package io.kfold.effects;

import com.icegreen.greenmail.junit5.GreenMailExtension;
import com.icegreen.greenmail.util.ServerSetupTest;
import io.kfold.KfoldConfig;
import io.kfold.KfoldNode;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.WebClient;
import jakarta.mail.Message;
import jakarta.mail.internet.MimeMessage;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

@ExtendWith(TestBroker.class)
class EmailEffectTest {

  @RegisterExtension
  static final GreenMailExtension SMTP = new GreenMailExtension(ServerSetupTest.SMTP);

  @Test
  @DisplayName("a real SMTP server receives the confirmation of each placed order, to its customer, with its subject")
  void orderConfirmations() throws Exception {
    Vertx vertx = Vertx.vertx();
    String worker = "order-confirmation:\n"
        + "  kind: email\n"
        + "  entities: [orders]\n"
        + "  events: [OrderPlaced]\n"
        + "  target:\n"
        + "    host: 127.0.0.1\n"
        + "    port: " + SMTP.getSmtp().getPort() + "\n"
        + "    from: shop@example.com\n"
        + "    to: \"{{state.customerEmail}}\"\n"
        + "    subject: \"Your order {{key}}\"\n"
        + "    body: \"Thank you. Total: {{state.total}}\"\n";
    KfoldConfig config = KfoldConfig.load(TestNodes.envWithEffects(TestNodes.newApp("mail"), TestNodes.tempDir("mail"), worker));
    KfoldNode node = TestNodes.startCaughtUp(vertx, config);
    WebClient client = WebClient.create(vertx);
    try {
      for (int i = 0; i < 5; i++) {
        String place = "{\"type\":\"place\",\"payload\":{\"customerEmail\":\"customer" + i + "@example.com\","
            + "\"items\":[{\"sku\":\"book\",\"quantity\":" + (i + 1) + ",\"price\":10}]}}";
        assertThat(TestNodes.call(client, HttpMethod.POST, node.httpPort(), "/v1/orders/m" + i + "/commands", place, Map.of())
            .status()).isEqualTo(200);
      }
      // A comment is not a placed order: no e-mail for it.
      TestNodes.call(client, HttpMethod.POST, node.httpPort(), "/v1/orders/m0/commands",
          "{\"type\":\"comment\",\"payload\":{\"text\":\"gift wrap\"}}", Map.of());
      assertThat(SMTP.waitForIncomingEmail(30_000, 5)).isTrue();
      Thread.sleep(500);
      MimeMessage[] received = SMTP.getReceivedMessages();
      assertThat(received).hasSize(5);
      Map<String, MimeMessage> byRecipient = new HashMap<>();
      for (MimeMessage message : received) {
        byRecipient.put(message.getRecipients(Message.RecipientType.TO)[0].toString(), message);
      }
      for (int i = 0; i < 5; i++) {
        MimeMessage message = byRecipient.get("customer" + i + "@example.com");
        assertThat(message).as("mail to customer%d", i).isNotNull();
        assertThat(message.getSubject()).isEqualTo("Your order m" + i);
        assertThat(message.getFrom()[0].toString()).isEqualTo("shop@example.com");
        assertThat(((String) message.getContent()).trim()).isEqualTo("Thank you. Total: " + (10 * (i + 1)));
      }
    } finally {
      client.close();
      node.stop().await(60, TimeUnit.SECONDS);
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }
}
