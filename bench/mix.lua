-- wrk script of the realistic mix of `invoke bench` (bench/wrk.py sets these variables):
--   BENCH_USERS        file of signed-in users (bench/sessions.py), one a line:
--                      "SESSION_KEY CSRF_SECRET TODO_ID,TODO_ID,..."
--   BENCH_PATHS        the list page's variants, separated by spaces
--   BENCH_WRITE_SHARE  share of requests that write (0.1: one in ten)
--   BENCH_ORIGIN       the site's origin (the Origin header CSRF checks)
-- Each request is a random user's: a GET of a random list variant, or a write as htmx
-- sends it, with that user's CSRF token: half quick-add creates, half toggles of one of
-- the user's own todos. A status of 400 or more is an error, a redirect (a session the
-- site did not accept sends to the login page) is counted apart.
-- At the end it prints one line, BENCH_RESULT {json}, that bench/wrk.py parses.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("number", #threads)
end

function init(args)
   math.randomseed(os.time() * 1000 + (number or 0))
   write_share = tonumber(os.getenv("BENCH_WRITE_SHARE") or "0.1")
   origin = os.getenv("BENCH_ORIGIN") or ""
   paths = {}
   for path in (os.getenv("BENCH_PATHS") or "/"):gmatch("%S+") do
      table.insert(paths, path)
   end
   users = {}
   for line in io.lines(os.getenv("BENCH_USERS")) do
      local session, csrf, ids = line:match("^(%S+) (%S+) ?(%S*)$")
      if session then
         local todos = {}
         for id in ids:gmatch("%d+") do
            table.insert(todos, id)
         end
         table.insert(users, {
            cookie = "sessionid=" .. session .. "; csrftoken=" .. csrf,
            csrf = csrf,
            todos = todos,
         })
      end
   end
   errors, redirects, writes = 0, 0, 0
end

function request()
   local user = users[math.random(#users)]
   local page = paths[math.random(#paths)]
   if math.random() >= write_share then
      return wrk.format("GET", page, { Cookie = user.cookie })
   end
   writes = writes + 1
   local headers = {
      Cookie = user.cookie,
      ["X-CSRFToken"] = user.csrf,
      ["Content-Type"] = "application/x-www-form-urlencoded",
      Origin = origin,
      ["HX-Request"] = "true",
      ["HX-Current-URL"] = origin .. page,
   }
   if #user.todos == 0 or math.random() < 0.5 then
      return wrk.format("POST", "/todos/new/", headers, "form=quick&title=Mixed+todo&priority=2")
   end
   local todo = user.todos[math.random(#user.todos)]
   return wrk.format("POST", "/todos/" .. todo .. "/toggle/", headers, "")
end

function response(status, response_headers, response_body)
   if status >= 400 then
      errors = errors + 1
   elseif status >= 300 then
      redirects = redirects + 1
   end
end

function done(summary, latency, requests)
   local unexpected, redirected, written = 0, 0, 0
   for _, thread in ipairs(threads) do
      unexpected = unexpected + (thread:get("errors") or 0)
      redirected = redirected + (thread:get("redirects") or 0)
      written = written + (thread:get("writes") or 0)
   end
   local errors = summary.errors
   io.write(string.format(
      "BENCH_RESULT {\"requests\": %d, \"duration_us\": %d, \"bytes\": %d, " ..
      "\"connect_errors\": %d, \"read_errors\": %d, \"write_errors\": %d, " ..
      "\"timeouts\": %d, \"unexpected_status\": %d, \"redirects\": %d, \"writes\": %d, " ..
      "\"p50_us\": %d, \"p90_us\": %d, \"p99_us\": %d, \"max_us\": %d, \"mean_us\": %.1f}\n",
      summary.requests, summary.duration, summary.bytes,
      errors.connect, errors.read, errors.write, errors.timeout, unexpected, redirected,
      written, latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean))
end
