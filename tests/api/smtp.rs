//! A real SMTP server on 127.0.0.1 for the mail tests: it speaks the protocol (EHLO/HELO,
//! MAIL FROM, RCPT TO, DATA, RSET, NOOP, QUIT) over TCP, so the service's SMTP transport is
//! exercised end to end, and keeps what it received. It can be started on a chosen port, so a
//! test can bring a mail server up only after the service has failed to reach it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::SecretString;
use sessiond::config::Settings;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::helpers::within;

/// One message as the server received it, with its body decoded from quoted-printable.
#[derive(Debug, Clone)]
pub struct Received {
    pub to: Vec<String>,
    pub data: String,
}

impl Received {
    /// The value of `name` in the first link of the message (`…?type=…&token=…`).
    pub fn link_param(&self, name: &str) -> Option<String> {
        let link = self.link()?;
        let url = url::Url::parse(&link).ok()?;
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The first http(s) link in the plain-text part.
    pub fn link(&self) -> Option<String> {
        let start = self
            .data
            .find("https://")
            .or_else(|| self.data.find("http://"))?;
        let rest = &self.data[start..];
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '"' || c == '<')
            .unwrap_or(rest.len());
        Some(rest[..end].to_string())
    }

    /// The 6-digit code of a sign-in mail (from its subject).
    pub fn code(&self) -> Option<String> {
        let subject = self.data.lines().find(|l| l.starts_with("Subject:"))?;
        let code: String = subject.chars().filter(char::is_ascii_digit).collect();
        (code.len() == 6).then_some(code)
    }
}

pub struct SmtpServer {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    accept: JoinHandle<()>,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl SmtpServer {
    pub async fn start() -> SmtpServer {
        SmtpServer::start_on(0).await
    }

    /// Listens on `port` (0: any free one).
    pub async fn start_on(port: u16) -> SmtpServer {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let store = received.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(converse(stream, store.clone()));
            }
        });
        SmtpServer {
            port,
            received,
            accept,
        }
    }

    /// A port nothing listens on (yet).
    pub async fn free_port() -> u16 {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        listener.local_addr().unwrap().port()
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Messages to `address` so far.
    pub fn to(&self, address: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t == address))
            .collect()
    }

    /// Waits (up to 10 s) until `count` messages to `address` arrived; returns them.
    pub async fn wait_for(&self, address: &str, count: usize) -> Vec<Received> {
        let arrived = within(Duration::from_secs(10), || async {
            self.to(address).len() >= count
        })
        .await;
        assert!(
            arrived,
            "{count} mail(s) to {address} expected; got {:?}",
            self.to(address)
        );
        self.to(address)
    }
}

/// Points the service's mail at `port` on 127.0.0.1, checking the outbox often and retrying
/// after a second, with links to `https://app.example.com/auth`.
pub fn mail_to(settings: &mut Settings, port: u16) {
    settings.mail.url = SecretString::from(format!("smtp://127.0.0.1:{port}"));
    settings.mail.from = "Acme <no-reply@acme.example>".into();
    settings.mail.product_name = "Acme".into();
    settings.mail.poll_interval_ms = 50;
    settings.mail.retry_base_secs = 1;
    settings.mail.timeout_secs = 2;
    settings.accounts.link_url = "https://app.example.com/auth".into();
    settings.accounts.sends_per_client_per_hour = 0;
}

async fn converse(stream: TcpStream, store: Arc<Mutex<Vec<Received>>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    if reply(&mut write, "220 test-smtp ready").await.is_err() {
        return;
    }
    let mut to = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        let upper = line.to_ascii_uppercase();
        let answer = if upper.starts_with("EHLO") {
            "250-test-smtp\r\n250 8BITMIME".to_string()
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            "250 ok".into()
        } else if upper.starts_with("MAIL FROM") {
            to.clear();
            "250 ok".into()
        } else if upper.starts_with("RCPT TO") {
            let address = line[8..]
                .trim()
                .trim_start_matches(':')
                .trim()
                .trim_matches(['<', '>'])
                .to_string();
            to.push(address);
            "250 ok".into()
        } else if upper.starts_with("RSET") {
            to.clear();
            "250 ok".into()
        } else if upper.starts_with("DATA") {
            if reply(&mut write, "354 end with <CRLF>.<CRLF>")
                .await
                .is_err()
            {
                return;
            }
            let mut data = String::new();
            while let Ok(Some(line)) = lines.next_line().await {
                if line == "." {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
                data.push('\n');
            }
            store.lock().unwrap().push(Received {
                to: std::mem::take(&mut to),
                data: decode_quoted_printable(&data),
            });
            "250 queued".into()
        } else if upper.starts_with("QUIT") {
            let _ = reply(&mut write, "221 bye").await;
            return;
        } else {
            "502 not implemented".into()
        };
        if reply(&mut write, &answer).await.is_err() {
            return;
        }
    }
}

async fn reply(write: &mut OwnedWriteHalf, text: &str) -> std::io::Result<()> {
    write.write_all(format!("{text}\r\n").as_bytes()).await
}

/// Undoes quoted-printable (soft line breaks and `=XX`), which mail clients decode too.
fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = joined.get(i + 1..i + 3);
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
