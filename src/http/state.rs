//! What every handler shares, built once at start-up and handed out as `web::Data<AppState>`:
//! the service's operations, and whether this instance is shutting down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::services::Services;

pub struct AppState {
    pub services: Arc<Services>,
    /// Set when a shutdown begins: `/readyz` answers 503 and connections are not kept alive.
    shutting_down: AtomicBool,
}

impl AppState {
    pub fn new(services: Arc<Services>) -> AppState {
        AppState {
            services,
            shutting_down: AtomicBool::new(false),
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    /// The first step of a graceful shutdown: from now on `/readyz` is 503, so the load balancer
    /// stops sending new traffic, while everything is still served.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }
}
