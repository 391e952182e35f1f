-- An operator can disable an account (`sessiond users disable`, POST /v1/admin/users/{id}/disable):
-- while `disabled_at` is set the user cannot log in or bridge, and disabling ends every session
-- of theirs in the same transaction. Clearing it (enable) lets them log in again.
alter table users add column disabled_at bigint;
