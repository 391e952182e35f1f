-- A signing key revoked in an emergency (`sessiond keys retire KID`): unlike a key retired by a
-- rotation, which keeps verifying until its tokens expire, a revoked key verifies nothing and is
-- no longer published. Instances on SQLite see it within half a second (they poll
-- `count(revoked_at)`, see src/maintenance.rs).
alter table signing_keys add column revoked_at bigint;
