-- Keys other backends authenticate with (created by `sessiond service-keys create`); only
-- their SHA-256 is stored.
create table service_keys (
    id text primary key,
    name text not null unique,
    key_hash blob not null unique,
    -- space-separated: introspect, admin
    scopes text not null,
    created_at bigint not null,
    revoked_at bigint
);

-- One-time WebSocket tickets: hashed at rest, 30 s lifetime, redeemed at most once.
create table ws_tickets (
    id text primary key,
    ticket_hash blob not null unique,
    session_id text not null references user_sessions (id) on delete cascade,
    created_at bigint not null,
    expires_at bigint not null,
    redeemed_at bigint
);
create index ws_tickets_expires_at_idx on ws_tickets (expires_at);
create index ws_tickets_session_id_idx on ws_tickets (session_id);

-- Security-relevant events. No foreign keys: events outlive the users they mention.
create table audit_events (
    id text primary key,
    at bigint not null,
    type text not null,
    user_id text,
    session_id text,
    ip_address text,
    user_agent text,
    -- JSON object; never a password, token or key
    detail text not null
);
create index audit_events_user_id_idx on audit_events (user_id, id);
create index audit_events_at_idx on audit_events (at);
