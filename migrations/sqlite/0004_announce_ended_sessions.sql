-- PostgreSQL announces ended sessions with triggers in this migration. SQLite has one instance
-- per file and no notifications: its instances trust cached sessions for at most 0.5 s
-- (src/gate.rs), which also covers revocations written by the CLI or by hand.
select 1;
