-- spawn: spawn N actors that wait for mail (their init runs too); report the
-- spawn rate and the growth of peak RSS (VmHWM) per actor; then call each actor
-- once from the main script, check every reply, and report that call rate.
--   troupe run tests/bench/spawn.lua [N]         (default N = 1,000,000)
local troupe = require "troupe"
local B = dofile(((arg and arg[0] or ""):match("(.*/)") or "./") .. "common.lua")
local N = B.n(1000000)
local now = B.now

local Idle = {
  _NAME = "Idle",
  init = function(self, i) self.i = i end,
  ping = function(self, k) return k + self.i end,
}

B.main(function()
  collectgarbage("collect")
  local hwm0 = B.vmhwm()
  local t0 = now()
  local addrs = {}
  for i = 1, N do addrs[i] = troupe.spawn(Idle, i) end
  troupe.run() -- every actor runs its init, then waits for mail
  local t1 = now()
  local hwm1 = B.vmhwm()
  local st = troupe.stats()
  B.check(st.actors >= N, "spawn: %d actors alive, want %d", st.actors, N)

  local t2 = now()
  for i = 1, N do
    local r = addrs[i]:call("ping", i)
    if r ~= 2 * i then error(("spawn: actor %d answered %s, want %d"):format(i, tostring(r), 2 * i)) end
  end
  local t3 = now()

  B.report("spawn", B.rate(N, t1 - t0), "actors/s")
  B.report("spawn.rss_per_actor", (hwm1 - hwm0) / N, "B")
  B.report("spawn.call_all", B.rate(N, t3 - t2), "calls/s")
end)
