-- wrk script: POST pre-signed Twilio webhooks from a pool file, each request used once.
-- Pool file (env WRK_POOL): one request per line, "path<TAB>X-Twilio-Signature<TAB>body".
-- Thread t of n takes lines t, t+n, t+2n, ... so no two requests share a CallSid.
-- WRK_METHOD=GET (with WRK_AUTH, an Authorization header) sends GETs of the pool's paths;
-- WRK_ACCEPT_ENCODING adds that Accept-Encoding header to them (as browsers send gzip).
-- done() prints one JSON line (prefix "WRK_JSON ") with throughput, latency and errors.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local path = os.getenv("WRK_POOL")
  local nthreads = tonumber(os.getenv("WRK_THREADS") or "1")
  local method = os.getenv("WRK_METHOD") or "POST"
  local auth = os.getenv("WRK_AUTH")
  local accept_encoding = os.getenv("WRK_ACCEPT_ENCODING")
  local pool = {}
  local i = 0
  for line in io.lines(path) do
    if i % nthreads == tid then
      local p, sig, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
      if method == "GET" then
        local headers = {["Authorization"] = auth}
        if accept_encoding then headers["Accept-Encoding"] = accept_encoding end
        pool[#pool + 1] = wrk.format("GET", p, headers)
      else
        pool[#pool + 1] = wrk.format("POST", p, {
          ["Content-Type"] = "application/x-www-form-urlencoded",
          ["X-Twilio-Signature"] = sig,
        }, body)
      end
    end
    i = i + 1
  end
  requests_pool = pool
  next_index = 1
  wrapped = 0
end

function request()
  local r = requests_pool[next_index]
  next_index = next_index + 1
  if next_index > #requests_pool then
    next_index = 1
    wrapped = wrapped + 1
  end
  return r
end

function done(summary, latency, requests)
  local wraps = 0
  for _, t in ipairs(threads) do
    wraps = wraps + (t:get("wrapped") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "rps": %.1f, "p50_us": %d, "p90_us": %d, '
      .. '"p99_us": %d, "max_us": %d, "err_connect": %d, "err_read": %d, "err_write": %d, '
      .. '"err_status": %d, "err_timeout": %d, "pool_wrapped": %d}\n',
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout, wraps))
end
