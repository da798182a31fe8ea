-- Scenario "list_filtered" (see common.lua).
local common = dofile(os.getenv("VPS_BENCH_LUA") .. "/common.lua")
request = common.list_filtered
