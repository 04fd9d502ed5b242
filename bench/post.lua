-- wrk script for the overhead benchmark. The scenario comes from the
-- environment so one script serves every run:
--   BENCH_MODEL   model name in the request body (default bench-json)
--   BENCH_STREAM  "1" to ask for a streamed (SSE) response
--   BENCH_CACHE   a Cache-Control value to send (cache benchmark: "no-cache" forces misses)
local model = os.getenv("BENCH_MODEL") or "bench-json"
local stream = os.getenv("BENCH_STREAM") == "1"

local stream_field = ""
if stream then
  stream_field = '"stream":true,'
end

local cache_control = os.getenv("BENCH_CACHE")
if cache_control then
  wrk.headers["Cache-Control"] = cache_control
end

-- The key of LIMITS=1 runs; the upstreams and nginx ignore it.
wrk.headers["Authorization"] = "Bearer sk-bench"

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format(
  '{"model":"%s",%s"messages":[{"role":"user","content":"Say hello"}]}',
  model, stream_field)

-- One machine-readable line for overhead.sh; latencies are in microseconds.
-- Non-2xx responses are counted in errors.status, so a misrouted target
-- cannot pass for a fast one.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT requests=%d duration_us=%d p50_us=%.0f p99_us=%.0f " ..
    "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
