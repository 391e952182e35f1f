-- Verified addresses, the time of a session's last authentication (for "fresh" and reauth),
-- tokens mailed for recovery and sign-in, and the mail outbox.
alter table users add column email_verified bigint not null default 0;

-- Unix seconds of the last authentication in the session (sign-in or re-authentication): the
-- access tokens' auth_time. Sessions from before this migration count from their creation.
alter table user_sessions add column auth_time bigint;
update user_sessions set auth_time = created_at;

-- Tokens mailed for one purpose (verify_email, reset_password, sign_in, change_email), stored
-- only as hashes. A sign-in mail also carries a 6-digit code (its hash, salted by the row id);
-- attempts counts wrong codes. Issuing a token of a purpose spends the user's older ones.
create table mail_tokens (
    id text primary key,
    token_hash bytea not null unique,
    code_hash bytea,
    purpose text not null,
    user_id text not null references users (id) on delete cascade,
    -- the address the token was sent to (the new address, for an email change)
    email text not null,
    attempts bigint not null default 0,
    created_at bigint not null,
    expires_at bigint not null,
    spent_at bigint
);
create index mail_tokens_user_purpose_idx on mail_tokens (user_id, purpose);
create index mail_tokens_expires_at_idx on mail_tokens (expires_at);

-- The outbox: what the request asked to be mailed, written in the request's own transaction.
-- Rows hold no secret: the sender creates a message's token when it sends it. Every instance
-- sends; a row is claimed (claimed_until) by one at a time.
create table mail_outbox (
    id text primary key,
    kind text not null,
    recipient text not null,
    user_id text,
    created_at bigint not null,
    next_attempt_at bigint not null,
    attempts bigint not null default 0,
    claimed_until bigint,
    sent_at bigint,
    dead_at bigint,
    last_error text
);
create index mail_outbox_due_idx on mail_outbox (next_attempt_at);
create index mail_outbox_sent_at_idx on mail_outbox (sent_at);
