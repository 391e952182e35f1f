-- wrk script: RFC 7662 introspection of one access token, as a backend would call it.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("SESSIOND_BENCH_KEY")
wrk.body = "token=" .. os.getenv("SESSIOND_BENCH_TOKEN")
