-- Scenario "patch" (see common.lua).
local common = dofile(os.getenv("VPS_BENCH_LUA") .. "/common.lua")
request = common.patch
