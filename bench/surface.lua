-- wrk script for bench/surfaces.sh: one POST whose path and body come from the environment
-- (BENCH_PATH, BENCH_BODY), sent with both key headers; prints the line surfaces.sh reads.
wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH")
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK_RESULT requests=%d p50_us=%.0f errors=%d\n",
    summary.requests, latency:percentile(50),
    e.connect + e.read + e.write + e.status + e.timeout))
end
