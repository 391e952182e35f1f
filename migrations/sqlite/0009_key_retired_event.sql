-- The feed announces a signing key revoked in an emergency (`sessiond keys retire KID`) as
-- `key.retired` with its `kid`, so JWKS verifiers drop it at once instead of trusting it until
-- their cache ages out. Written by a trigger in the revoking transaction, like every event.
-- Such an event concerns no user: `user_id` is '' (the column stays NOT NULL; rebuilding the
-- table in SQLite to relax it would break the triggers that write to it).
alter table session_events add column kid text;

create trigger signing_keys_event_retired
    after update of revoked_at on signing_keys
    when old.revoked_at is null and new.revoked_at is not null
begin
    insert into session_events (at, type, user_id, kid)
        values (new.revoked_at, 'key.retired', '', new.kid);
end;
