//! Whether a session is live right now, and who hears when it stops being so: the gate (the
//! set of recently ended sessions, session snapshots), the announcement bus (the one PostgreSQL
//! `LISTEN` connection), and the session event feed.

pub mod bus;
pub mod events;
pub mod gate;
