-- wrk script for bench/load.py: paced requests, one connection per wrk thread, every response
-- logged so bench/load.py can match acknowledgements with what reached the event store.
--
--   wrk -t N -c N -d 20s -s bench/load.lua URL -- MODE DIR RATE THREADS
--
-- MODE "collector": thread i sends the pre-signed batches of DIR/requests-<i>.txt (one request
--   per line: "<signature>\t<body>"), each at most once, to POST /v1/events.
-- MODE "edge": GET / as a new visitor each time (no cookie); the decision ids the page carries
--   (data-edgepick-decision="...") are logged.
-- Pacing: thread i sends request k at t0 + (k + i / THREADS) * THREADS / RATE seconds, or at
--   once when it is behind (a closed loop can then fall short of RATE: bench/load.py reports the
--   achieved rate and how late requests went out). With one connection per thread a response
--   always belongs to the thread's last request, so acknowledgements are matched exactly.
-- done() writes DIR/result.txt: the summary, latency percentiles and one line per response.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } load_timespec;
int clock_gettime(int clk_id, load_timespec *tp);
]]
local ts = ffi.new("load_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local mode, interval, t0
out_dir = nil          -- global: done() reads it through thread:get
local requests = {}
sent = 0              -- requests handed to wrk
local current = -1    -- index of the request in flight
log = {}              -- one line per response (read by done() through thread:get)
late = 0              -- requests sent more than 100 ms after their slot
max_late_ms = 0
exhausted = 0

local user_agents = {
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Gecko/20100101 Firefox/121.0",
}

function init(args)
  mode, out_dir = args[1], args[2]
  local rate, nthreads = tonumber(args[3]), tonumber(args[4])
  interval = nthreads * 1000.0 / rate
  t0 = now_ms() + interval * tid / nthreads
  if mode == "collector" then
    local path = string.format("%s/requests-%d.txt", out_dir, tid)
    for line in io.lines(path) do
      local signature, body = line:match("^([^\t]+)\t(.*)$")
      table.insert(requests, wrk.format("POST", "/v1/events", {
        ["content-type"] = "application/json",
        ["x-edgepick-signature"] = signature,
      }, body))
    end
  end
end

function delay()
  local wait = t0 + sent * interval - now_ms()
  if wait < -100 then
    late = late + 1
    if -wait > max_late_ms then max_late_ms = -wait end
  end
  if wait > 0 then return math.floor(wait) end
  return 0
end

function request()
  current = sent
  sent = sent + 1
  if mode == "collector" then
    local r = requests[current + 1]
    if r == nil then -- the pre-signed batches ran out: never resend one, ask for health instead
      exhausted = exhausted + 1
      return wrk.format("GET", "/health")
    end
    return r
  end
  local ua = user_agents[(current % #user_agents) + 1]
  return wrk.format("GET", "/", { ["user-agent"] = ua, ["accept"] = "text/html" })
end

function response(status, headers, body)
  if mode == "collector" then
    local accepted = body:match('"accepted":%s*(%d+)') or "-"
    local duplicates = body:match('"duplicates":%s*(%d+)') or "-"
    table.insert(log, string.format("r %d %d %d %s %s", tid, current, status, accepted, duplicates))
  else
    local ids = {}
    for id in body:gmatch('data%-edgepick%-decision="([^"]+)"') do
      table.insert(ids, id)
    end
    table.insert(log, string.format("r %d %d %d %s", tid, current, status, table.concat(ids, " ")))
  end
end

function done(summary, latency, requests_stats)
  local out = assert(io.open(threads[1]:get("out_dir") .. "/result.txt", "w"))
  local e = summary.errors
  out:write(string.format("summary %d %d %d %d %d %d %d %d\n", summary.duration, summary.requests,
    summary.bytes, e.connect, e.read, e.write, e.status, e.timeout))
  out:write(string.format("latency_us %d %d %d %d %d %d %.1f\n", latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.min,
    latency.max, latency.mean))
  for _, thread in ipairs(threads) do
    out:write(string.format("thread %d %d %d %.1f %d\n", thread:get("tid"), thread:get("sent"),
      thread:get("late"), thread:get("max_late_ms"), thread:get("exhausted")))
    for _, line in ipairs(thread:get("log")) do
      out:write(line, "\n")
    end
  end
  out:close()
end
