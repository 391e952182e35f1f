-- The session event feed (GET /v1/events): one row per session created, session ended (with
-- its reason) and user deleted. Rows are written by triggers, so an event is part of the
-- transaction that makes the change, whoever makes it (the service, the CLI, SQL by hand).
--
-- Consumers resume after the last id they saw, so an id must never become visible after a
-- larger one. An identity value is taken at insert, not at commit, so two transactions could
-- commit out of id order; every writer therefore takes one transaction-scoped advisory lock
-- before taking its id and holds it until it commits. Ids then become visible in order. The
-- writes that emit events end their transactions right after, so the lock is held for about
-- one commit.
create table session_events (
    id bigint generated always as identity primary key,
    at bigint not null,
    type text not null,
    user_id text not null,
    session_id text,
    reason text
);
create index session_events_at_idx on session_events (at);

-- The largest id the retention purge has deleted: a consumer resuming from before it has lost
-- events and is told to start over.
create table session_events_purged (
    singleton bigint primary key check (singleton = 1),
    through bigint not null
);
insert into session_events_purged (singleton, through) values (1, 0);

create function sessiond_session_event(p_type text, p_at bigint, p_user_id text,
                                       p_session_id text, p_reason text)
    returns void language plpgsql as $$
begin
    -- 7461 = 'sessiond events' in no particular encoding: one lock key for this feed.
    perform pg_advisory_xact_lock(7461, 1);
    insert into session_events (at, type, user_id, session_id, reason)
        values (p_at, p_type, p_user_id, p_session_id, p_reason);
    perform pg_notify('sessiond_events', '');
end
$$;

create function sessiond_session_created() returns trigger language plpgsql as $$
begin
    perform sessiond_session_event('session.created', new.created_at, new.user_id, new.id, null);
    return new;
end
$$;
create trigger user_sessions_event_created
    after insert on user_sessions
    for each row execute function sessiond_session_created();

create function sessiond_session_ended() returns trigger language plpgsql as $$
begin
    perform sessiond_session_event('session.ended', new.revoked_at, new.user_id, new.id,
                                   new.revoked_reason);
    return new;
end
$$;
create trigger user_sessions_event_ended
    after update of revoked_at on user_sessions
    for each row
    when (old.revoked_at is null and new.revoked_at is not null)
    execute function sessiond_session_ended();

-- A live session deleted with its user (the purge of ended sessions emits nothing).
create function sessiond_session_deleted() returns trigger language plpgsql as $$
begin
    perform sessiond_session_event('session.ended', extract(epoch from now())::bigint,
                                   old.user_id, old.id, 'user_deleted');
    return old;
end
$$;
create trigger user_sessions_event_deleted
    after delete on user_sessions
    for each row
    when (old.revoked_at is null and old.expires_at > extract(epoch from now())::bigint)
    execute function sessiond_session_deleted();

create function sessiond_user_deleted() returns trigger language plpgsql as $$
begin
    perform sessiond_session_event('user.deleted', extract(epoch from now())::bigint,
                                   old.id, null, null);
    return old;
end
$$;
create trigger users_event_deleted
    after delete on users
    for each row execute function sessiond_user_deleted();
