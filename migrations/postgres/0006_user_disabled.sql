-- An operator can disable an account (`sessiond users disable`, POST /v1/admin/users/{id}/disable):
-- while `disabled_at` is set the user cannot log in or bridge, and disabling ends every session
-- of theirs in the same transaction. Clearing it (enable) lets them log in again.
alter table users add column disabled_at bigint;

-- Instances cache a user with each of their sessions: announce a change of the flag too (the
-- sessions a disable revokes are announced by the session triggers of 0004 anyway).
create trigger users_announce_disabled
    after update on users
    for each row
    when (old.disabled_at is distinct from new.disabled_at)
    execute function sessiond_announce_user();
