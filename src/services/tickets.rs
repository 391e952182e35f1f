//! One-time WebSocket tickets. A browser cannot set headers on a WebSocket handshake, so it
//! asks for a ticket (Bearer) and puts it in the handshake; the socket server redeems it once
//! (service key). Tickets are 128+ random bits (we use 256), stored hashed, live 30 seconds.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use crate::clock::Clock;
use crate::credentials::tokens::opaque;
use crate::domain::SessionId;
use crate::error::Result;
use crate::liveness::gate::{SessionGate, Snapshot};
use crate::store::Store;

pub const TICKET_TTL_SECS: i64 = 30;

/// Issues and redeems WebSocket tickets.
pub struct Tickets {
    store: Store,
    clock: Clock,
    gate: Arc<SessionGate>,
}

impl Tickets {
    pub fn new(store: Store, clock: Clock, gate: Arc<SessionGate>) -> Tickets {
        Tickets { store, clock, gate }
    }

    /// A new ticket for session `session_id`.
    pub async fn issue_ticket(&self, session_id: &SessionId) -> Result<SecretString> {
        let ticket = opaque::generate();
        let now = self.clock.now();
        let (id, hash) = (
            uuid::Uuid::now_v7().to_string(),
            opaque::hash(ticket.expose_secret()),
        );
        self.store
            .insert_ws_ticket(&id, &hash, session_id, now, now + TICKET_TTL_SECS)
            .await?;
        Ok(ticket)
    }

    /// Spends a ticket: its session (with the user) if the ticket was unspent and unexpired
    /// and the session is live; `None` otherwise.
    pub async fn redeem_ticket(&self, ticket: &SecretString) -> Result<Option<Arc<Snapshot>>> {
        if !opaque::looks_valid(ticket.expose_secret()) {
            return Ok(None);
        }
        let now = self.clock.now();
        let hash = opaque::hash(ticket.expose_secret());
        let Some(session_id) = self.store.redeem_ws_ticket(&hash, now).await? else {
            return Ok(None);
        };
        Ok(self.gate.snapshot(&session_id, now).await?)
    }
}
