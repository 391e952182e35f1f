-- wrk script: logins spread over eight accounts (bench1@ … bench8@example.com, created by
-- scripts/bench), so that the per-account throttle — at most five checks of one account from
-- one address at a time — never limits a measurement of argon2 throughput.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local n = 0

function request()
  n = n + 1
  local body = '{"email":"bench' .. (n % 8 + 1) ..
    '@example.com","password":"correct horse battery staple"}'
  return wrk.format(nil, nil, nil, body)
end
