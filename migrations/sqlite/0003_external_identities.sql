-- Users who arrive through the session bridge, keyed by their issuer's (iss, sub): the same sub
-- from two issuers is two users, and nobody is ever linked to an account by email alone.
create table external_identities (
    issuer text not null,
    subject text not null,
    user_id text not null references users (id) on delete cascade,
    provider text not null,
    created_at bigint not null,
    primary key (issuer, subject)
);
create index external_identities_user_id_idx on external_identities (user_id);
