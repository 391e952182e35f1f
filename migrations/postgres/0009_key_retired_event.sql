-- The feed announces a signing key revoked in an emergency (`sessiond keys retire KID`) as
-- `key.retired` with its `kid`, so JWKS verifiers drop it at once instead of trusting it until
-- their cache ages out. Written by a trigger in the revoking transaction, under the feed's
-- advisory lock like every event (see 0005). Such an event concerns no user: `user_id` is '',
-- as on SQLite, where the column cannot be relaxed without rebuilding the table.
alter table session_events add column kid text;

create function sessiond_key_retired() returns trigger language plpgsql as $$
begin
    perform pg_advisory_xact_lock(7461, 1);
    insert into session_events (at, type, user_id, kid)
        values (new.revoked_at, 'key.retired', '', new.kid);
    perform pg_notify('sessiond_events', '');
    return new;
end
$$;

create trigger signing_keys_event_retired
    after update of revoked_at on signing_keys
    for each row
    when (old.revoked_at is null and new.revoked_at is not null)
    execute function sessiond_key_retired();
