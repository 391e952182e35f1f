-- wrk script: RFC 7662 introspection with tokens from a file (one per line, the first COUNT):
--   wrk -s bench/validate.lua URL -- TOKENS_FILE COUNT uniform   each request draws a token
--                                                                uniformly at random
--   wrk -s bench/validate.lua URL -- TOKENS_FILE COUNT each      every token once, in order,
--                                                                then the run stops
local tokens, mode, next_token, answered = {}, "uniform", 0, 0
local headers = {
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["Authorization"] = "Bearer " .. os.getenv("SESSIOND_BENCH_KEY"),
}

function init(args)
  local count = tonumber(args[2])
  mode = args[3] or mode
  for line in io.lines(args[1]) do
    tokens[#tokens + 1] = line
    if #tokens >= count then break end
  end
  math.randomseed(os.time())
end

function request()
  local token
  if mode == "each" then
    next_token = next_token % #tokens + 1
    token = tokens[next_token]
  else
    token = tokens[math.random(#tokens)]
  end
  return wrk.format("POST", nil, headers, "token=" .. token)
end

function response(status, headers, body)
  if status ~= 200 or not body:find('"active":true', 1, true) then
    io.stderr:write("introspection failed: " .. status .. " " .. body .. "\n")
    os.exit(1)
  end
  answered = answered + 1
  if mode == "each" and answered >= #tokens then
    wrk.thread:stop()
  end
end
