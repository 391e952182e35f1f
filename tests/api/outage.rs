//! Simulated database outages, per backend: PostgreSQL is reached through a TCP relay the test
//! can cut (every connection drops and new ones are refused, as when the server goes away);
//! SQLite is write-locked by another connection for as long as the outage lasts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use secrecy::SecretString;
use sessiond::config::Settings;
use sqlx::Connection;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::helpers::{Backend, TestApp, TestDb, backend, spawn_on};

pub struct Relay {
    up: AtomicBool,
    links: Mutex<Vec<JoinHandle<()>>>,
    /// The accept loop: aborting it closes the listener, so new connections are refused.
    listener: Mutex<Option<JoinHandle<()>>>,
}

pub enum Switch {
    Relay(Arc<Relay>),
    Sqlite {
        url: String,
        holder: Option<sqlx::sqlite::SqliteConnection>,
    },
}

/// An app whose database the test can take away and give back.
pub async fn spawn_app_with_switch(customize: impl FnOnce(&mut Settings)) -> (TestApp, Switch) {
    let db = Arc::new(TestDb::new().await);
    match backend() {
        Backend::Sqlite => {
            let url = db.url.clone();
            let app = spawn_on(db, customize).await;
            (app, Switch::Sqlite { url, holder: None })
        }
        Backend::Postgres => {
            let relay = Arc::new(Relay {
                up: AtomicBool::new(true),
                links: Mutex::new(Vec::new()),
                listener: Mutex::new(None),
            });
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let accepting = tokio::spawn(accept_loop(listener, relay.clone()));
            *relay.listener.lock().await = Some(accepting);
            let mut url = url::Url::parse(&db.url).unwrap();
            url.set_port(Some(port)).unwrap();
            let app = spawn_on(db, |s| {
                s.database.url = SecretString::from(url.to_string());
                customize(s);
            })
            .await;
            (app, Switch::Relay(relay))
        }
    }
}

async fn accept_loop(listener: TcpListener, relay: Arc<Relay>) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        if !relay.up.load(Ordering::SeqCst) {
            continue; // dropped: the client sees the connection closed
        }
        let link = tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect("127.0.0.1:5432").await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
        relay.links.lock().await.push(link);
    }
}

impl Switch {
    pub async fn cut(&mut self) {
        match self {
            Switch::Relay(relay) => {
                relay.up.store(false, Ordering::SeqCst);
                for link in relay.links.lock().await.drain(..) {
                    link.abort();
                }
            }
            Switch::Sqlite { url, holder } => {
                let mut conn = sqlx::sqlite::SqliteConnection::connect(url).await.unwrap();
                sqlx::raw_sql(
                    "PRAGMA busy_timeout = 5000; BEGIN IMMEDIATE; \
                     CREATE TABLE IF NOT EXISTS outage_marker (x integer);",
                )
                .execute(&mut conn)
                .await
                .unwrap();
                *holder = Some(conn);
            }
        }
    }

    /// The database host is gone for good: every connection drops and the port refuses new
    /// ones (PostgreSQL); SQLite is write-locked, as in [`Switch::cut`].
    pub async fn lose_host(&mut self) {
        if let Switch::Relay(relay) = self
            && let Some(accepting) = relay.listener.lock().await.take()
        {
            accepting.abort();
        }
        self.cut().await;
    }

    pub async fn restore(&mut self) {
        match self {
            Switch::Relay(relay) => relay.up.store(true, Ordering::SeqCst),
            Switch::Sqlite { holder, .. } => {
                if let Some(mut conn) = holder.take() {
                    sqlx::raw_sql("ROLLBACK;").execute(&mut conn).await.unwrap();
                    conn.close().await.unwrap();
                }
            }
        }
    }
}
