-- wrk-ap.lua - drive cancelq-sandbox's ActivePlatform delete_operation.
--
--   wrk -t2 -c64 -d5s -s tools/sandbox/wrk-ap.lua http://127.0.0.1:PORT
--
-- Every request deletes a new subscription (reseller 1, subscription id
-- unique per run, thread and request), so every answer is the documented
-- 200 success, not a 403 for an already deleted one.  Set SANDBOX_FIXED_SID
-- to hammer one subscription instead (200 once, then 403s), and
-- SANDBOX_AP_TOKEN when the sandbox runs with --token activeplatform=...

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("tid", #threads)
end

local counter = 0
local fixed = os.getenv("SANDBOX_FIXED_SID")
local base = nil -- per thread: run clock and thread number, so reruns use fresh ids

wrk.method = "POST"
wrk.headers["X-Api-Token"] = os.getenv("SANDBOX_AP_TOKEN") or "sandbox-activeplatform-token"
wrk.headers["Content-Type"] = "application/vnd.api+json"
wrk.headers["Accept"] = "application/vnd.api+json"

function request()
   counter = counter + 1
   base = base or ((os.time() % 1000000) * 100 + tid) * 10000000
   local sid = fixed or string.format("%d", base + counter)
   return wrk.format(nil, "/api/v3/resellers/1/subscriptions/" .. sid .. "/delete_operation")
end
