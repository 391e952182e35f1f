-- A signing key revoked in an emergency (`sessiond keys retire KID`): unlike a key retired by a
-- rotation, which keeps verifying until its tokens expire, a revoked key verifies nothing and is
-- no longer published.
alter table signing_keys add column revoked_at bigint;

-- Every instance re-reads its key ring when it hears this (src/gate.rs listens), so a revoked key
-- stops verifying everywhere within milliseconds of the commit, and a rotation is picked up at
-- once. Row-level on purpose: the readiness probe's no-op update touches no row and stays silent.
create function sessiond_announce_signing_keys() returns trigger language plpgsql as $$
begin
    perform pg_notify('sessiond_signing_keys', '');
    return null;
end
$$;

create trigger signing_keys_announce
    after insert or update or delete on signing_keys
    for each row
    execute function sessiond_announce_signing_keys();
