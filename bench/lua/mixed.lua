-- Scenario "mixed": 80% reads (60% GET one server, 20% list page), 20% writes
-- (10% PATCH, 5% create, 5% reboot).
local common = dofile(os.getenv("VPS_BENCH_LUA") .. "/common.lua")

request = function()
  local roll = math.random(100)
  if roll <= 60 then
    return common.get()
  elseif roll <= 80 then
    return common.list()
  elseif roll <= 90 then
    return common.patch()
  elseif roll <= 95 then
    return common.create()
  end
  return common.reboot()
end
