-- mix.lua - wrk script: the cancellation endpoint mix cancelqd sends, straight
-- at cancelq-sandbox (the reference rate of tools/bench.sh).
--
--   wrk -t1 -c64 -d5s -s tools/bench/mix.lua http://127.0.0.1:PORT
--
-- Requests rotate over the three providers, one third each, as the bench's
-- jobs do:
--   Intronis       POST /v1/partners/{username}/cancellation, OAuth token,
--                  Accept, JSON {"reason_id":1,"reason_note":""}  -> 303
--   ActivePlatform POST /api/v3/resellers/{rid}/subscriptions/{sid}/delete_operation,
--                  X-Api-Token, vnd.api+json                   -> 200
--   Keliweb        POST /api/v2/keliweb/add-cancel-request, Bearer token,
--                  multipart/form-data serviceid (+ type)      -> 200 success
-- Every request names a new target (run clock, thread number, counter), so
-- every answer is the documented success, never the "already cancelled" one.
-- Tokens: the sandbox defaults, or SANDBOX_<PROVIDER>_TOKEN.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("tid", #threads)
end

local function env(name, default)
   local v = os.getenv(name)
   if v == nil or v == "" then return default end
   return v
end

local tok_in = env("SANDBOX_INTRONIS_TOKEN", "sandbox-intronis-token")
local tok_ap = env("SANDBOX_ACTIVEPLATFORM_TOKEN", "sandbox-activeplatform-token")
local tok_kw = env("SANDBOX_KELIWEB_TOKEN", "sandbox-keliweb-token")

local counter = 0
local base = nil

local h_in = {
   ["Authorization"] = "OAuth " .. tok_in,
   ["Accept"] = "application/json",
   ["Content-Type"] = "application/json",
}
local body_in = '{"reason_id":1,"reason_note":""}'

local h_ap = {
   ["X-Api-Token"] = tok_ap,
   ["Content-Type"] = "application/vnd.api+json",
   ["Accept"] = "application/vnd.api+json",
}

local boundary = "------------------------cqbenchb0undary"
local h_kw = {
   ["Authorization"] = "Bearer " .. tok_kw,
   ["Accept"] = "application/json",
   ["Content-Type"] = "multipart/form-data; boundary=" .. boundary,
}

local function kw_body(serviceid)
   return "--" .. boundary .. "\r\n" ..
      'Content-Disposition: form-data; name="serviceid"\r\n\r\n' .. serviceid .. "\r\n" ..
      "--" .. boundary .. "\r\n" ..
      'Content-Disposition: form-data; name="type"\r\n\r\nImmediate\r\n' ..
      "--" .. boundary .. "--\r\n"
end

function request()
   counter = counter + 1
   -- per thread and run: ids never repeat within a sandbox's life
   base = base or ((os.time() % 100000) * 100 + tid) * 1000000
   local n = string.format("%d", base + counter)
   local k = counter % 3
   if k == 0 then
      return wrk.format("POST", "/v1/partners/wrk-" .. n .. "/cancellation", h_in, body_in)
   elseif k == 1 then
      return wrk.format("POST", "/api/v3/resellers/9/subscriptions/" .. n .. "/delete_operation", h_ap, nil)
   else
      return wrk.format("POST", "/api/v2/keliweb/add-cancel-request", h_kw, kw_body(n))
   end
end
