//! How a mail leaves: SMTP through `lettre` (STARTTLS, or implicit TLS with `smtps://`; a
//! pool of connections per instance), or `log:` for development, which writes the message to
//! the log (production refuses it, see `config`).

use std::time::Duration;

use anyhow::Context;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use super::templates::Mail;
use crate::config::MailSettings;

pub enum Mailer {
    Log {
        from: Mailbox,
    },
    Smtp {
        from: Mailbox,
        transport: AsyncSmtpTransport<Tokio1Executor>,
    },
}

impl Mailer {
    pub fn from_settings(settings: &MailSettings) -> anyhow::Result<Mailer> {
        let from: Mailbox = settings
            .from
            .parse()
            .with_context(|| format!("mail.from {:?} is not a mailbox", settings.from))?;
        let raw = settings.url.expose_secret();
        if raw == "log:" {
            return Ok(Mailer::Log { from });
        }
        let url = url::Url::parse(raw).context("mail.url is not a URL")?;
        let host = url
            .host_str()
            .context("mail.url names no host")?
            .to_string();
        let loopback = host == "localhost"
            || host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        let builder = match url.scheme() {
            "smtps" => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(&host)?.port(url.port().unwrap_or(465))
            }
            "smtp" if loopback => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host)
                .port(url.port().unwrap_or(25)),
            "smtp" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host)?
                .port(url.port().unwrap_or(587)),
            other => anyhow::bail!("mail.url: unsupported scheme {other}"),
        };
        let mut builder = builder
            .timeout(Some(Duration::from_secs(settings.timeout_secs.max(1))))
            .pool_config(PoolConfig::new().max_size(settings.pool_size.max(1)));
        if !url.username().is_empty() {
            let decode = |s: &str| -> anyhow::Result<String> {
                Ok(percent_encoding::percent_decode_str(s)
                    .decode_utf8()
                    .context("mail.url: credentials are not valid percent-encoded UTF-8")?
                    .into_owned())
            };
            let user = decode(url.username())?;
            let password = decode(url.password().unwrap_or(""))?;
            builder = builder.credentials(Credentials::new(user, password));
        }
        Ok(Mailer::Smtp {
            from,
            transport: builder.build(),
        })
    }

    /// Hands one mail to the server (or the log). The error says what went wrong, never the
    /// message's content.
    pub async fn send(&self, mail: &Mail) -> anyhow::Result<()> {
        match self {
            Mailer::Log { from } => {
                tracing::info!(
                    from = %from,
                    to = %mail.to,
                    subject = %mail.subject,
                    body = %mail.text,
                    "mail (log: transport, development only)"
                );
                Ok(())
            }
            Mailer::Smtp { from, transport } => {
                let message = Message::builder()
                    .from(from.clone())
                    .to(mail.to.parse().context("the recipient is not a mailbox")?)
                    .subject(mail.subject.clone())
                    .multipart(MultiPart::alternative_plain_html(
                        mail.text.clone(),
                        mail.html.clone(),
                    ))
                    .context("cannot build the message")?;
                transport
                    .send(message)
                    .await
                    .map_err(|e| anyhow::anyhow!("SMTP: {e}"))?;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> MailSettings {
        let mut settings = crate::config::Settings::defaults().mail;
        settings.url = secrecy::SecretString::from(url.to_string());
        settings
    }

    // A pool is built inside the runtime that will drive it.
    #[tokio::test]
    async fn each_scheme_builds_its_transport_and_bad_urls_are_refused() {
        // Building connects to nothing: a pool opens connections when it sends.
        for url in [
            "log:",
            "smtp://127.0.0.1:2525",
            "smtp://mailer:p%40ss@smtp.example.com",
            "smtps://mailer:secret@smtp.example.com:465",
        ] {
            let built = Mailer::from_settings(&settings(url));
            assert!(built.is_ok(), "{url}: {:?}", built.err());
        }
        assert!(matches!(
            Mailer::from_settings(&settings("log:")).unwrap(),
            Mailer::Log { .. }
        ));
        for url in ["http://smtp.example.com", "smtp://", "not a url"] {
            assert!(Mailer::from_settings(&settings(url)).is_err(), "{url}");
        }
        let mut bad_from = settings("log:");
        bad_from.from = "not a mailbox".into();
        assert!(Mailer::from_settings(&bad_from).is_err());
    }
}
