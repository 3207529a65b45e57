-- wrk script of `invoke bench` (bench/wrk.py sets these environment variables):
--   BENCH_METHOD   GET or POST
--   BENCH_PATHS    paths separated by spaces; requests cycle through them
--   BENCH_EXPECT   the status every response must have; any other counts as an error
--   BENCH_HEADERS  "Name: value" lines (cookies, CSRF token, htmx)
--   BENCH_BODY     request body, sent with POST
-- At the end it prints one line, BENCH_RESULT {json}, that bench/wrk.py parses.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   -- Each thread starts at its own place in the path list, so that threads do not
   -- walk the same rows in lockstep.
   thread:set("offset", #threads - 1)
end

function init(args)
   method = os.getenv("BENCH_METHOD") or "GET"
   expected = tonumber(os.getenv("BENCH_EXPECT") or "200")
   body = os.getenv("BENCH_BODY")
   if body == "" then
      body = nil
   end
   headers = {}
   for line in (os.getenv("BENCH_HEADERS") or ""):gmatch("[^\n]+") do
      local name, value = line:match("^([^:]+):%s*(.*)$")
      if name then
         headers[name] = value
      end
   end
   paths = {}
   for path in (os.getenv("BENCH_PATHS") or "/"):gmatch("%S+") do
      table.insert(paths, path)
   end
   position = (offset or 0) * math.max(1, math.floor(#paths / 2))
   unexpected = 0
end

function request()
   position = position % #paths + 1
   return wrk.format(method, paths[position], headers, body)
end

function response(status, response_headers, response_body)
   if status ~= expected then
      unexpected = unexpected + 1
   end
end

function done(summary, latency, requests)
   local mismatched = 0
   for _, thread in ipairs(threads) do
      mismatched = mismatched + (thread:get("unexpected") or 0)
   end
   local errors = summary.errors
   io.write(string.format(
      "BENCH_RESULT {\"requests\": %d, \"duration_us\": %d, \"bytes\": %d, " ..
      "\"connect_errors\": %d, \"read_errors\": %d, \"write_errors\": %d, " ..
      "\"timeouts\": %d, \"unexpected_status\": %d, \"p50_us\": %d, \"p90_us\": %d, " ..
      "\"p99_us\": %d, \"max_us\": %d, \"mean_us\": %.1f}\n",
      summary.requests, summary.duration, summary.bytes,
      errors.connect, errors.read, errors.write, errors.timeout, mismatched,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean))
end
