-- wrk script: logins spread over the accounts bench1@ … benchN@example.com (created by
-- scripts/bench; N is the script's argument, 8 by default), so that the per-account throttle —
-- at most five checks of one account from one address at a time — never limits a measurement
-- of argon2 throughput.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local n, accounts = 0, 8

function init(args)
  accounts = tonumber(args[1]) or accounts
end

function request()
  n = n + 1
  local body = '{"email":"bench' .. (n % accounts + 1) ..
    '@example.com","password":"correct horse battery staple"}'
  return wrk.format(nil, nil, nil, body)
end
