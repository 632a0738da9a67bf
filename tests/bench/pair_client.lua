-- The client of one pair of the parallel workload (tests/bench/parallel.lua).
-- A file behaviour, so that each scheduler can load it: spawned from main code,
-- clients are spread over the schedulers; each client's init spawns its own
-- server, which an actor's spawn places on the spawner's scheduler, so the
-- two actors of a pair share a scheduler and pairs run independently.
--   init(id)              id: the pair's number, echoed in the report
--   run(n)                n synchronous server:call("ping", i); each reply must
--                         be i + 1; returns n
--   go(n, collector)      run(n), then collector:send("done", id, count)
--   where()               the schedulers of the client and of its server (nil
--                         without troupe.scheduler)
local troupe = require "troupe"
local error, tostring = error, tostring

local Server = {
  _NAME = "PairServer",
  ping = function(self, i) return i + 1 end,
}

local function run(self, n)
  local server = self.server
  for i = 1, n do
    local r = server:call("ping", i)
    if r ~= i + 1 then
      error(("parallel: pair %d: call %d answered %s, want %d"):format(self.id, i, tostring(r), i + 1))
    end
  end
  return n
end

return {
  _NAME = "PairClient",
  init = function(self, id)
    self.id = id
    self.server = troupe.spawn(Server)
  end,
  run = run,
  go = function(self, n, collector)
    local ok, count = pcall(run, self, n)
    if not ok then
      -- the collector turns a message into a failed check, so the main script
      -- reports it instead of waiting forever
      collector:send("failed", self.id, tostring(count))
      error(count, 0)
    end
    collector:send("done", self.id, count)
  end,
  where = function(self)
    if not troupe.scheduler then return nil end
    return troupe.scheduler(troupe.self()), troupe.scheduler(self.server)
  end,
}
