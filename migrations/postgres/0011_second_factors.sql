-- Second factors and passkeys: a TOTP authenticator per user (its secret sealed under the
-- key-encryption key when one is configured), its recovery codes (hashes), the single-use
-- challenges a login answers with when a second factor is due, and WebAuthn passkeys with the
-- ceremonies in flight (kept here, not in memory, so any instance may finish what another began).

create table totp_factors (
    user_id text primary key references users (id) on delete cascade,
    secret_sealed bytea not null,
    -- null while pending: enrolled, not yet confirmed with a first code
    confirmed_at bigint,
    -- the newest 30-second step a code was accepted for: no code is accepted twice
    last_step bigint not null default 0,
    created_at bigint not null
);

create table recovery_codes (
    id text primary key,
    user_id text not null references users (id) on delete cascade,
    code_hash bytea not null unique,
    created_at bigint not null,
    used_at bigint
);
create index recovery_codes_user_idx on recovery_codes (user_id);

-- What a right first factor earns when a second is due: the mfa_token (its hash), for 5
-- minutes and 5 wrong codes. first_factor is the amr the session will start with.
create table mfa_challenges (
    id text primary key,
    token_hash bytea not null unique,
    user_id text not null references users (id) on delete cascade,
    first_factor text not null,
    attempts bigint not null default 0,
    created_at bigint not null,
    expires_at bigint not null,
    spent_at bigint
);
create index mfa_challenges_expires_at_idx on mfa_challenges (expires_at);

create table passkeys (
    id text primary key,
    user_id text not null references users (id) on delete cascade,
    -- the authenticator's credential id (raw bytes): unique across every user
    credential_id bytea not null unique,
    name text not null,
    -- the credential as the WebAuthn library stores it (public key, counter, flags), JSON
    credential text not null,
    created_at bigint not null,
    last_used_at bigint
);
create index passkeys_user_idx on passkeys (user_id);

-- A registration or authentication ceremony in flight: its state, single use, 5 minutes.
create table webauthn_challenges (
    id text primary key,
    purpose text not null,
    user_id text references users (id) on delete cascade,
    name text,
    state text not null,
    created_at bigint not null,
    expires_at bigint not null
);
create index webauthn_challenges_expires_at_idx on webauthn_challenges (expires_at);
