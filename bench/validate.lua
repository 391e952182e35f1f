-- wrk script: validation with tokens from a file (one per line, the first COUNT): RFC 7662
-- introspection by default, GET /v1/me with the token as Bearer when the fourth argument is "me":
--   wrk -s bench/validate.lua URL -- TOKENS_FILE COUNT uniform   each request draws a token
--                                                                uniformly at random
--   wrk -s bench/validate.lua URL -- TOKENS_FILE COUNT each      the tokens in order, so each
--                                                                request is a token's first use
--                                                                until the list wraps
-- (wrk runs for its -d whatever a thread does, so "each" cannot stop after the last token.)
local mode, next_token, endpoint = "uniform", 0, "introspect"
local headers = {
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["Authorization"] = "Bearer " .. os.getenv("SESSIOND_BENCH_KEY"),
}

-- Every request is formatted once, in init: wrk shares the cores with the server, and building
-- a request per call in Lua (and collecting the garbage) would be measured as the server's.
local requests = {}

function init(args)
  local count = tonumber(args[2])
  mode = args[3] or mode
  endpoint = args[4] or endpoint
  for token in io.lines(args[1]) do
    if endpoint == "me" then
      requests[#requests + 1] = wrk.format("GET", nil, { ["Authorization"] = "Bearer " .. token })
    else
      requests[#requests + 1] = wrk.format("POST", nil, headers, "token=" .. token)
    end
    if #requests >= count then break end
  end
  math.randomseed(os.time())
end

function request()
  if mode == "each" then
    next_token = next_token % #requests + 1
    return requests[next_token]
  end
  return requests[math.random(#requests)]
end

function response(status, headers, body)
  local ok = status == 200 and (endpoint == "me" or body:find('"active":true', 1, true))
  if not ok then
    io.stderr:write(endpoint .. " failed: " .. status .. " " .. body .. "\n")
    os.exit(1)
  end
end
