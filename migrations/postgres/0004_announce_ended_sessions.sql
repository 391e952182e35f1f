-- Every instance keeps live sessions in memory (src/gate.rs) and forgets one when it hears of
-- its end on this channel. The announcement is made here, by triggers, so it is part of the
-- transaction that ends (or reshapes) the session: NOTIFY is delivered at commit and only if the
-- transaction commits. A failed announcement can no longer follow a committed revocation, and
-- revocations written by the CLI or by hand in SQL are announced too.
create function sessiond_announce_session() returns trigger language plpgsql as $$
begin
    if tg_op = 'DELETE' then
        perform pg_notify('sessiond_ended_sessions', old.id);
        return old;
    end if;
    perform pg_notify('sessiond_ended_sessions', new.id);
    return new;
end
$$;

-- Revoked, or reshaped (a guest upgrade changes kind, amr and expiry). Refreshes only move
-- last_seen_at and are not announced: with the column list, PostgreSQL does not even consider
-- the trigger for them (refresh is the hottest write).
create trigger user_sessions_announce_change
    after update of revoked_at, kind, amr, expires_at, user_id on user_sessions
    for each row
    when (old.revoked_at is distinct from new.revoked_at
          or old.kind is distinct from new.kind
          or old.amr is distinct from new.amr
          or old.expires_at is distinct from new.expires_at
          or old.user_id is distinct from new.user_id)
    execute function sessiond_announce_session();

-- Deleted while still live (a user deleted); the purge of ended sessions stays silent.
create trigger user_sessions_announce_delete
    after delete on user_sessions
    for each row
    when (old.revoked_at is null and old.expires_at > extract(epoch from now())::bigint)
    execute function sessiond_announce_session();

-- A user's email or guest flag is part of every cached session of theirs.
create function sessiond_announce_user() returns trigger language plpgsql as $$
begin
    perform pg_notify('sessiond_ended_sessions', s.id) from user_sessions s where s.user_id = new.id;
    return new;
end
$$;

create trigger users_announce_change
    after update on users
    for each row
    when (old.email is distinct from new.email or old.is_guest is distinct from new.is_guest)
    execute function sessiond_announce_user();
