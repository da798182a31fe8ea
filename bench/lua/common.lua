-- Shared by every scenario: the token, server ids and locations come from the environment
-- (set by bench/run.py), each thread seeds its own random generator, and done() prints one
-- JSON line that run.py parses. A 400 whose body says `invalid_state` (a power action in the
-- wrong state) is expected under load and is counted apart from the errors.
local M = {}

local token = os.getenv("VPS_BENCH_TOKEN") or error("VPS_BENCH_TOKEN is not set")
local create_token = os.getenv("VPS_BENCH_CREATE_TOKEN") or token

M.headers = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
M.create_headers = {
  ["Authorization"] = "Bearer " .. create_token,
  ["Content-Type"] = "application/json",
}

M.ids = {}
for id in string.gmatch(os.getenv("VPS_BENCH_IDS") or "", "%d+") do
  M.ids[#M.ids + 1] = id
end

-- Creates alternate between these locations, and the filtered list asks for the first
-- (run.py passes locations of its own: the default ones have room for 245 servers each).
M.locations = {}
for code in string.gmatch(os.getenv("VPS_BENCH_LOCATIONS") or "us-west,us-east", "[^,]+") do
  M.locations[#M.locations + 1] = code
end

local counter = 0

function M.server_path()
  return "/api/v1/servers/" .. M.ids[math.random(#M.ids)] .. "/"
end

function M.get()
  return wrk.format("GET", M.server_path(), M.headers)
end

function M.list()
  return wrk.format("GET", "/api/v1/servers/", M.headers)
end

function M.list_filtered()
  return wrk.format("GET", "/api/v1/servers/?status=active&location=" .. M.locations[1],
    M.headers)
end

function M.create()
  counter = counter + 1
  local location = M.locations[counter % #M.locations + 1]
  local body = string.format(
    '{"name": "bench-%d-%d", "plan_id": 3, "os_id": 5, "location": "%s"}',
    thread_id or 0, counter, location)
  return wrk.format("POST", "/api/v1/servers/", M.create_headers, body)
end

function M.patch()
  counter = counter + 1
  local body = string.format('{"name": "renamed-%d-%d"}', thread_id or 0, counter)
  return wrk.format("PATCH", M.server_path(), M.headers, body)
end

function M.reboot()
  return wrk.format("POST", M.server_path() .. "reboot/", M.headers)
end

-- Per-thread counters, read back by done() through the thread objects.
ok, invalid_state, other, last_other = 0, 0, 0, 0

local threads = {}

function setup(thread)
  thread:set("thread_id", #threads + 1)
  threads[#threads + 1] = thread
end

function init(args)
  math.randomseed(os.time() * 1000 + (thread_id or 0))
end

function response(status, headers, body)
  if status < 400 then
    ok = ok + 1
  elseif status == 400 and body and string.find(body, "invalid_state", 1, true) then
    invalid_state = invalid_state + 1
  else
    other = other + 1
    last_other = status
  end
end

function done(summary, latency, requests)
  local n_ok, n_state, n_other, last = 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    n_ok = n_ok + thread:get("ok")
    n_state = n_state + thread:get("invalid_state")
    n_other = n_other + thread:get("other")
    local seen = thread:get("last_other")
    if seen ~= 0 then last = seen end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
      .. '"max_us": %d, "non_2xx_3xx": %d, "socket_errors": {"connect": %d, "read": %d, '
      .. '"write": %d, "timeout": %d}, "ok": %d, "invalid_state_400": %d, "other_status": %d, '
      .. '"last_other_status": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.status, e.connect, e.read, e.write, e.timeout, n_ok, n_state, n_other, last))
end

return M
