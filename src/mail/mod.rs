//! Mail: the messages sessiond sends (templates) and how they leave (transport). What is sent
//! when, and the outbox that makes it durable, are the services' (`services::mail`).

pub mod templates;
pub mod transport;
