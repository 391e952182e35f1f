-- Failed logins per (account, client address) and per account ('*' as client), shared by every
-- instance: one budget however many instances serve. `account` is the normalized email as
-- typed, whether or not an account has it, so throttling says nothing about which emails exist.
create table login_throttle (
    account text not null,
    client text not null,
    failures bigint not null,
    window_start bigint not null,
    blocked_until bigint not null,
    primary key (account, client)
);

-- Fixed-window counters for per-address budgets that every instance shares (guest creation).
create table rate_windows (
    key text not null,
    window_start bigint not null,
    hits bigint not null,
    primary key (key, window_start)
);
create index rate_windows_window_start_idx on rate_windows (window_start);
