-- wrk script: each response's refresh token is the next request's, so every request is a real
-- rotation. Start with as many tokens (one per line in the file given as argument) as
-- connections: a connection never waits for a token.
local tokens = {}

function init(args)
  for line in io.lines(args[1]) do
    tokens[#tokens + 1] = line
  end
end

function request()
  local token = table.remove(tokens)
  return wrk.format("POST", "/v1/token/refresh", { ["Content-Type"] = "application/json" },
    '{"refresh_token":"' .. token .. '"}')
end

function response(status, headers, body)
  local token = body:match('"refresh_token":"([^"]+)"')
  if token then
    tokens[#tokens + 1] = token
  else
    io.stderr:write("refresh failed: " .. status .. " " .. body .. "\n")
    os.exit(1)
  end
end
