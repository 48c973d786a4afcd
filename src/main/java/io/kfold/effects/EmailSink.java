package io.kfold.effects;

import io.kfold.effects.EffectConfig.EmailTarget;
import io.kfold.entity.EffectSink.PermanentFailure;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.ext.mail.LoginOption;
import io.vertx.ext.mail.MailClient;
import io.vertx.ext.mail.MailConfig;
import io.vertx.ext.mail.MailMessage;
import io.vertx.ext.mail.StartTLSOptions;

/** Sends an e-mail over SMTP for each change: recipient, subject and body are templates. */
final class EmailSink implements EffectSink {

  private final EmailTarget target;
  private final MailClient client;

  EmailSink(Vertx vertx, EmailTarget target) {
    this.target = target;
    MailConfig config = new MailConfig()
        .setHostname(target.host())
        .setPort(target.port())
        .setSsl(target.ssl())
        .setStarttls(target.startTls() ? StartTLSOptions.REQUIRED : StartTLSOptions.OPTIONAL);
    if (!target.username().isEmpty()) {
      config.setLogin(LoginOption.REQUIRED).setUsername(target.username()).setPassword(target.password());
    } else {
      config.setLogin(LoginOption.DISABLED);
    }
    this.client = MailClient.create(vertx, config);
  }

  @Override
  public Future<Void> deliver(Change change) {
    String to = Templates.render(target.to(), change.context()).trim();
    if (!to.matches("[^@\\s]+@[^@\\s]+")) {
      return Future.failedFuture(new PermanentFailure("no valid recipient: the template '" + target.to()
          + "' gave '" + to + "'"));
    }
    MailMessage message = new MailMessage()
        .setFrom(target.from())
        .setTo(to)
        .setSubject(Templates.render(target.subject(), change.context()))
        .setText(Templates.render(target.body(), change.context()))
        .addHeader("X-Kfold-Event-Id", change.eventId());
    return client.sendMail(message).mapEmpty();
  }

  @Override
  public Future<Void> close() {
    return client.close();
  }
}
