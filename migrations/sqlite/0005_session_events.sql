-- The session event feed (GET /v1/events): one row per session created, session ended (with
-- its reason) and user deleted, written by triggers in the transaction that makes the change,
-- whoever makes it (the service, the CLI, SQL by hand). SQLite has one writer at a time, so
-- AUTOINCREMENT ids become visible in order.
create table session_events (
    id integer primary key autoincrement,
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
    singleton integer primary key check (singleton = 1),
    through bigint not null
);
insert into session_events_purged (singleton, through) values (1, 0);

create trigger user_sessions_event_created
    after insert on user_sessions
begin
    insert into session_events (at, type, user_id, session_id)
        values (new.created_at, 'session.created', new.user_id, new.id);
end;

create trigger user_sessions_event_ended
    after update of revoked_at on user_sessions
    when old.revoked_at is null and new.revoked_at is not null
begin
    insert into session_events (at, type, user_id, session_id, reason)
        values (new.revoked_at, 'session.ended', new.user_id, new.id, new.revoked_reason);
end;

-- A live session deleted with its user (the purge of ended sessions emits nothing).
create trigger user_sessions_event_deleted
    after delete on user_sessions
    when old.revoked_at is null and old.expires_at > cast(strftime('%s', 'now') as integer)
begin
    insert into session_events (at, type, user_id, session_id, reason)
        values (cast(strftime('%s', 'now') as integer), 'session.ended', old.user_id, old.id,
                'user_deleted');
end;

create trigger users_event_deleted
    after delete on users
begin
    insert into session_events (at, type, user_id)
        values (cast(strftime('%s', 'now') as integer), 'user.deleted', old.id);
end;
