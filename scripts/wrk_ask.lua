-- Load script for Debian's wrk: POSTs /v1/ask (cached mode, k = 5) cycling
-- through the first 50 questions of the sample dev split, and prints
-- requests/s and latency percentiles. Run from the repository root:
--   wrk -t1 -c4 -d15s --timeout 10s -s scripts/wrk_ask.lua http://127.0.0.1:8080/v1/ask
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local bodies = {}
for line in io.lines("data/sample/questions-dev.jsonl") do
  -- The sample questions hold no quotes or backslashes, so the captured
  -- text is already valid inside a JSON string.
  local question = line:match('"question": "([^"]*)"')
  if question then
    bodies[#bodies + 1] = string.format('{"question": "%s", "k": 5, "mode": "cached"}', question)
  end
  if #bodies == 50 then break end
end

local i = 0
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end

done = function(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout
  io.write(string.format("requests %d, errors %d, %.1f req/s, p50 %.1f ms, p95 %.1f ms, p99 %.1f ms\n",
    summary.requests, errors, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
