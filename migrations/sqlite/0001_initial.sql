-- Times are Unix seconds (BIGINT), ids are UUID text, hashes are raw bytes: the same shape as
-- the PostgreSQL schema so that every query is written once.
create table users (
    id text primary key,
    -- normalized (trimmed, NFC, lowercased); null for guests
    email text unique,
    password_hash text,
    is_guest integer not null default 0,
    created_at bigint not null,
    updated_at bigint not null
);

create table user_sessions (
    id text primary key,
    user_id text not null references users (id) on delete cascade,
    kind text not null,
    provider text,
    amr text not null,
    user_agent text,
    ip_address text,
    created_at bigint not null,
    last_seen_at bigint not null,
    expires_at bigint not null,
    revoked_at bigint,
    revoked_reason text
);
create index user_sessions_user_id_idx on user_sessions (user_id, revoked_at);
create index user_sessions_expires_at_idx on user_sessions (expires_at);
create index user_sessions_revoked_at_idx on user_sessions (revoked_at) where revoked_at is not null;

create table refresh_tokens (
    id text primary key,
    session_id text not null references user_sessions (id) on delete cascade,
    token_hash blob not null unique,
    parent_id text,
    created_at bigint not null,
    rotated_at bigint,
    revoked_at bigint,
    -- set when rotated: the successor, sealed with a key derived from this token, so a retry
    -- within the grace window can get the same successor back without storing it in clear
    successor_id text,
    successor_sealed blob
);
create index refresh_tokens_session_id_idx on refresh_tokens (session_id);

create table signing_keys (
    kid text primary key,
    alg text not null,
    private_der blob not null,
    public_jwk text not null,
    -- 1 for the one key that signs, null otherwise: the unique constraint makes a second
    -- active key impossible even when two instances start at once
    active integer unique,
    created_at bigint not null,
    retired_at bigint
);
