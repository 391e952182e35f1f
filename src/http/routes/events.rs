//! `GET /v1/events`: the session event feed for trusted backends (scope `events`), as
//! Server-Sent Events or, with `after`/`limit`, as a JSON poll. Both read the same log in the
//! same order (see the `events` module).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::{broadcast, mpsc};

use crate::clock;
use crate::domain::Scope;
use crate::domain::{SessionEvent, SessionId};
use crate::error::Error;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::ServiceClient;
use crate::http::state::AppState;
use crate::http::views::no_store;
use crate::services::Caller;
use crate::services::{EventFeed, PAGE, PublishedEvent};

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;
/// Chunks waiting for one slow consumer's socket; past them (and past `SEND_TIMEOUT`) the
/// consumer is dropped and resumes with `Last-Event-ID`.
const CONSUMER_BUFFER: usize = 64;
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// `Retry-After` for a key that holds all the streams it may: one may end soon.
const STREAM_CAP_RETRY_SECS: u64 = 5;

#[derive(Deserialize)]
pub struct EventsQuery {
    after: Option<String>,
    limit: Option<String>,
}

/// An event on the wire: a session or user event (`{id, type, at, user_id, session_id,
/// reason}`), or a signing key's retirement (`{id, type, at, kid}`), which concerns no user.
#[derive(Serialize)]
#[serde(untagged)]
enum EventView<'a> {
    Session {
        id: i64,
        #[serde(rename = "type")]
        kind: &'a str,
        at: String,
        user_id: &'a str,
        session_id: Option<&'a str>,
        reason: Option<&'a str>,
    },
    Key {
        id: i64,
        #[serde(rename = "type")]
        kind: &'a str,
        at: String,
        kid: &'a str,
    },
}

impl<'a> From<&'a SessionEvent> for EventView<'a> {
    fn from(event: &'a SessionEvent) -> Self {
        match &event.kid {
            Some(kid) => EventView::Key {
                id: event.id,
                kind: event.kind.as_str(),
                at: clock::rfc3339(event.at),
                kid,
            },
            None => EventView::Session {
                id: event.id,
                kind: event.kind.as_str(),
                at: clock::rfc3339(event.at),
                user_id: event.user_id.as_ref().map_or("", |id| id.as_str()),
                session_id: event.session_id.as_ref().map(SessionId::as_str),
                reason: event.reason.map(|r| r.as_str()),
            },
        }
    }
}

pub async fn events(
    state: web::Data<AppState>,
    client: ServiceClient,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    client.require(Scope::Events)?;
    let query = web::Query::<EventsQuery>::from_query(req.query_string())
        .map_err(|_| ApiError::InvalidRequest("malformed query string".into()))?
        .into_inner();
    let wants_json = req
        .headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json") && !a.contains("text/event-stream"));
    // Malformed in either form: the poll form ignores the header, but must not accept garbage.
    let resume = last_event_id(&req)?;
    if query.after.is_some() || query.limit.is_some() || wants_json {
        poll(&state, &query).await
    } else {
        stream(&state, client.0, resume).await
    }
}

/// The `Last-Event-ID` header as an event id, if present.
fn last_event_id(req: &HttpRequest) -> ApiResult<Option<i64>> {
    req.headers()
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::InvalidRequest("Last-Event-ID must be an event id".into()))
                .and_then(|text| event_id(text, "Last-Event-ID"))
        })
        .transpose()
}

fn event_id(text: &str, what: &str) -> Result<i64, ApiError> {
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|id| *id >= 0)
        .ok_or_else(|| ApiError::InvalidRequest(format!("{what} must be an event id")))
}

async fn poll(state: &AppState, query: &EventsQuery) -> ApiResult<HttpResponse> {
    let after = match &query.after {
        Some(text) => event_id(text, "after")?,
        None => 0,
    };
    let limit = match &query.limit {
        Some(text) => text
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| ApiError::InvalidRequest(format!("limit must be 1 to {MAX_LIMIT}")))?,
        None => DEFAULT_LIMIT,
    };
    let after = match state.events.resume_point(after).await? {
        Ok(after) => after,
        Err(start_over) => {
            let body = json!({ "events": [], "next": start_over, "reset": true });
            return Ok(no_store(StatusCode::OK).json(body));
        }
    };
    let events = state.events.events_after(after, limit).await?;
    let next = events.last().map_or(after, |e| e.id);
    let views: Vec<EventView> = events.iter().map(EventView::from).collect();
    Ok(no_store(StatusCode::OK).json(json!({ "events": views, "next": next })))
}

async fn stream(
    state: &web::Data<AppState>,
    caller: Caller,
    resume: Option<i64>,
) -> ApiResult<HttpResponse> {
    let feed = state.events.clone();
    let cap = state.settings.max_event_streams_per_key;
    let lease = feed
        .lease_stream(&caller.name, cap)
        .ok_or(Error::RateLimited(STREAM_CAP_RETRY_SECS))?;
    // Subscribe before reading where to start: nothing committed after this point is missed.
    let live = feed.subscribe();
    let (start, reset) = match resume {
        // The newest committed event, not the fan-out position, which may lag it by a poll.
        None => (feed.last_event_id().await?, None),
        Some(after) => match feed.resume_point(after).await? {
            Ok(after) => (after, None),
            Err(start_over) => (start_over, Some(start_over)),
        },
    };
    let (out, chunks) = mpsc::channel::<Bytes>(CONSUMER_BUFFER);
    let keepalive = Duration::from_secs(state.settings.event_keepalive_secs.max(1));
    state.metrics.event_consumers.inc();
    let metrics_state = state.clone();
    tokio::spawn(async move {
        // Opens the stream at once, so the consumer knows it is subscribed.
        let mut open = send(&out, Bytes::from_static(b": connected\n\n")).await;
        if let Some(id) = reset {
            let data = json!({ "reason": "the events after that id are no longer retained" });
            open = open && send(&out, frame(id, "reset", &data.to_string())).await;
        }
        if open {
            // The key's revocation (on any instance) ends the stream within the keys' re-read.
            let revoked = metrics_state
                .services
                .validation
                .service_key_revoked(&caller);
            tokio::select! {
                _ = follow(feed, live, start, &out, keepalive) => {}
                _ = revoked => tracing::info!(key = %caller.name, "service key revoked: stream ended"),
            }
        }
        drop(lease);
        metrics_state.metrics.event_consumers.dec();
    });
    let body = futures_util::stream::unfold(chunks, |mut chunks| async move {
        chunks
            .recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), chunks))
    });
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/event-stream"))
        .insert_header((CACHE_CONTROL, "no-store"))
        // Proxies such as nginx would otherwise hold events back in their buffers.
        .insert_header(("x-accel-buffering", "no"))
        .streaming(body))
}

/// Sends the retained events after `last` from the database, then the live ones, until the
/// consumer goes away or falls too far behind.
async fn follow(
    feed: Arc<EventFeed>,
    mut live: broadcast::Receiver<Arc<PublishedEvent>>,
    mut last: i64,
    out: &mpsc::Sender<Bytes>,
    keepalive: Duration,
) {
    loop {
        let Ok(page) = feed.events_after(last, PAGE).await else {
            return; // the consumer reconnects with Last-Event-ID
        };
        let complete = (page.len() as i64) < PAGE;
        for event in &page {
            if !send(out, event_frame(event)).await {
                return;
            }
            last = event.id;
        }
        if complete {
            break;
        }
    }
    let mut ticks = tokio::time::interval(keepalive);
    ticks.tick().await;
    loop {
        let chunk = tokio::select! {
            received = live.recv() => match received {
                Ok(event) if event.row.id > last => {
                    last = event.row.id;
                    event.rendered(event_frame)
                }
                Ok(_) => continue,
                // Lagged: more events than the ring holds went by while this consumer was
                // stuck; it resumes from its Last-Event-ID.
                Err(_) => return,
            },
            _ = ticks.tick() => Bytes::from_static(b": keep-alive\n\n"),
            _ = out.closed() => return,
            // Shutting down: the consumer reconnects (to another instance) with Last-Event-ID.
            _ = feed.closed() => return,
        };
        if !send(out, chunk).await {
            return;
        }
    }
}

async fn send(out: &mpsc::Sender<Bytes>, chunk: Bytes) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, out.send(chunk)).await,
        Ok(Ok(()))
    )
}

fn event_frame(event: &SessionEvent) -> Bytes {
    let data = serde_json::to_string(&EventView::from(event)).unwrap_or_default();
    frame(event.id, event.kind.as_str(), &data)
}

fn frame(id: i64, kind: &str, data: &str) -> Bytes {
    Bytes::from(format!("id: {id}\nevent: {kind}\ndata: {data}\n\n"))
}
