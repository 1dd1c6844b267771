-- wrk script: POST the body read from the file given after `--` (binary-safe), and print
-- one machine-readable summary line that bench/load.py parses. Headers come from `-H`;
-- without a Content-Type header the body is sent as JSON.
--   wrk -t1 -c16 -d5s --latency -s bench/post.lua [-H "Name: value"] URL -- BODY_FILE
wrk.method = "POST"
if wrk.headers["Content-Type"] == nil then
  wrk.headers["Content-Type"] = "application/json"
end

function init(args)
  local path = args[1]
  if path == nil then
    error("usage: wrk ... -s post.lua URL -- BODY_FILE")
  end
  local file = assert(io.open(path, "rb"))
  wrk.body = file:read("*a")
  file:close()
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_WRK {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
