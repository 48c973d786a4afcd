package io.kfold.effects;

import com.fasterxml.jackson.databind.JsonNode;
import com.icegreen.greenmail.junit5.GreenMailExtension;
import com.icegreen.greenmail.util.ServerSetupTest;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.kfold.TestBroker;
import io.kfold.TestLog;
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
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

@ExtendWith(TestBroker.class)
class EmailEffectTest {

  @RegisterExtension
  static final GreenMailExtension SMTP = new GreenMailExtension(ServerSetupTest.SMTP);

  @Test
  @DisplayName("a real SMTP server receives one mail for each placed and each paid order, to its customer, with its"
      + " subject, and none for another event")
  void orderConfirmations() throws Exception {
    Vertx vertx = Vertx.vertx();
    String worker = "order-confirmation:\n"
        + "  kind: email\n"
        + "  entities: [orders]\n"
        + "  events: [OrderPlaced, OrderPaid]\n"
        + "  target:\n"
        + "    host: 127.0.0.1\n"
        + "    port: " + SMTP.getSmtp().getPort() + "\n"
        + "    from: shop@example.com\n"
        + "    to: \"{{state.customerEmail}}\"\n"
        + "    subject: \"Your order {{key}}\"\n"
        + "    body: \"Thank you. Total: {{state.total}}\"\n";
    NodeConfig config = NodeConfig.load(TestNodes.envWithEffects(TestNodes.newApp("mail"), TestNodes.tempDir("mail"), worker));
    NodeRuntime node = TestNodes.startCaughtUp(vertx, config);
    WebClient client = WebClient.create(vertx);
    try {
      for (int i = 0; i < 5; i++) {
        String place = "{\"type\":\"place\",\"payload\":{\"customerEmail\":\"customer" + i + "@example.com\","
            + "\"items\":[{\"sku\":\"book\",\"quantity\":" + (i + 1) + ",\"price\":10}]}}";
        assertThat(TestNodes.call(client, HttpMethod.POST, node.httpPort(), "/v1/orders/m" + i + "/commands", place, Map.of())
            .status()).isEqualTo(200);
      }
      // A comment is neither: no e-mail for it. The payment after it is the sentinel: the changes
      // of one entity are delivered in order, so a mail for the comment would come before the
      // payment's.
      assertThat(TestNodes.call(client, HttpMethod.POST, node.httpPort(), "/v1/orders/m0/commands",
          "{\"type\":\"comment\",\"payload\":{\"text\":\"gift wrap\"}}", Map.of()).status()).isEqualTo(200);
      assertThat(TestNodes.call(client, HttpMethod.POST, node.httpPort(), "/v1/orders/m0/commands",
          "{\"type\":\"pay\",\"payload\":{\"amount\":10}}", Map.of()).status()).isEqualTo(200);
      List<JsonNode> m0 = TestLog.events(config.eventsTopic("orders"), "m0");
      assertThat(m0).extracting(event -> event.path("type").asText())
          .containsExactly("OrderPlaced", "OrderCommented", "OrderPaid");
      String paid = m0.get(2).path("id").asText();
      long deadline = System.currentTimeMillis() + 30_000;
      Map<String, MimeMessage> byEvent = mailsByEvent();
      while (!byEvent.containsKey(paid)) {
        assertThat(System.currentTimeMillis()).as("the mail for m0's payment arrives").isLessThan(deadline);
        Thread.sleep(50);
        byEvent = mailsByEvent();
      }
      Map<String, Integer> expected = new HashMap<>();  // event id -> the number of its order
      for (int i = 0; i < 5; i++) {
        expected.put(TestLog.events(config.eventsTopic("orders"), "m" + i).get(0).path("id").asText(), i);
      }
      expected.put(paid, 0);
      assertThat(byEvent.keySet()).as("the events mailed: five placed orders and m0's payment, not its comment")
          .isEqualTo(expected.keySet());
      for (var mail : expected.entrySet()) {
        MimeMessage message = byEvent.get(mail.getKey());
        int i = mail.getValue();
        assertThat(message.getRecipients(Message.RecipientType.TO)[0].toString()).isEqualTo("customer" + i + "@example.com");
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

  /** The mails received so far, by the event kfold names in each; one mail per event. */
  private static Map<String, MimeMessage> mailsByEvent() throws Exception {
    Map<String, MimeMessage> byEvent = new HashMap<>();
    for (MimeMessage message : SMTP.getReceivedMessages()) {
      String event = message.getHeader("X-Kfold-Event-Id")[0];
      assertThat(byEvent.put(event, message)).as("a second mail for event %s", event).isNull();
    }
    return byEvent;
  }
}
