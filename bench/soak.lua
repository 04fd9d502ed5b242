-- wrk script for bench/soak.sh: one scenario of the mix per wrk process, from the environment.
--   SOAK_SCENARIO  plain | cached | streamed | flaky | failing | mcp | context
-- Requests differ by a per-thread counter where the scenario needs distinct ones (cache misses,
-- context documents), so the mix covers both sides of the cache and a growing store.
local scenario = os.getenv("SOAK_SCENARIO") or "plain"
local counter = 0

local function chat(model, text, stream)
  local streamed = ""
  if stream then streamed = '"stream":true,' end
  return string.format('{"model":"%s",%s"max_tokens":16,"messages":[{"role":"user","content":"%s"}]}',
    model, streamed, text)
end

local meta = '"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",' ..
  '"io.modelcontextprotocol/clientInfo":{"name":"soak","version":"1"},' ..
  '"io.modelcontextprotocol/clientCapabilities":{}}'

request = function()
  counter = counter + 1
  local headers = {
    ["Authorization"] = "Bearer sk-soak",
    ["Content-Type"] = "application/json",
  }
  if scenario == "plain" then
    return wrk.format("POST", "/v1/chat/completions", headers, chat("soak-steady", "plain " .. counter, false))
  elseif scenario == "cached" then
    return wrk.format("POST", "/v1/chat/completions", headers, chat("soak-steady", "the same question", false))
  elseif scenario == "streamed" then
    return wrk.format("POST", "/v1/chat/completions", headers, chat("soak-steady", "stream " .. counter, true))
  elseif scenario == "flaky" then
    return wrk.format("POST", "/v1/chat/completions", headers, chat("soak-flaky", "flaky " .. counter, false))
  elseif scenario == "failing" then
    return wrk.format("POST", "/v1/chat/completions", headers, chat("soak-failing", "failing " .. counter, false))
  elseif scenario == "mcp" then
    headers["Accept"] = "application/json, text/event-stream"
    headers["Mcp-Protocol-Version"] = "2026-07-28"
    headers["Mcp-Method"] = "tools/call"
    headers["Mcp-Name"] = "context_get"
    local body = string.format('{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"context_get",' ..
      '"arguments":{"namespace":"soak","key":"k%d"},%s}}', counter, counter % 500, meta)
    return wrk.format("POST", "/mcp", headers, body)
  else -- context
    return wrk.format("PUT", string.format("/v1/context/soak/k%d", counter % 500), headers,
      string.format('{"n":%d,"note":"a context document written by the soak"}', counter))
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("SOAK_RESULT scenario=%s requests=%d non2xx=%d socket_errors=%d p50_us=%.0f p99_us=%.0f\n",
    scenario, summary.requests, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
