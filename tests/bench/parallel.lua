-- parallel: P independent pingpong pairs make R round trips each, all at once.
-- Each pair is a client (the file behaviour pair_client.lua, spawned from main
-- code, so spread over the schedulers) and a server its init spawns next to it
-- (same scheduler). A collector actor tells every client to go, each client
-- makes R calls ping(i) to its server and checks every reply is i + 1, then
-- reports its count to the collector, which answers the main script once all
-- P pairs have reported; every pair must report exactly R. The rate counts
-- round trips (P * R) over the wall time from the first "go" to the last
-- report. One stderr line says how the clients landed on the schedulers.
--   troupe run tests/bench/parallel.lua [P [R]]  (default P = 1,000, R = 10,000)
--   (P also from env BENCH_N, R from env BENCH_ROUNDS)
local troupe = require "troupe"
local dir = (arg and arg[0] or ""):match("(.*/)") or "./"
local B = dofile(dir .. "common.lua")
local PAIRS = B.n(1000)
local ROUNDS = math.floor(tonumber(arg and arg[2]) or tonumber(os.getenv("BENCH_ROUNDS")) or 10000)
local CLIENT = dir .. "pair_client.lua"
local now, defer, tostring = B.now, troupe.defer, tostring

-- answer the main script's waiting call: with the totals, or failed
local function finish(self)
  local w = self.waiter
  self.waiter = nil
  if w then w:reply(self.reported, self.total, now() - self.t0) end
end

local function fail(self, why)
  local w = self.waiter
  self.waiter = nil
  if w then w:fail(why) end
end

local Collector = {
  _NAME = "Collector",
  init = function(self, pairs, rounds)
    self.pairs, self.rounds = pairs, rounds
    self.seen, self.reported, self.total = {}, 0, 0
  end,
  -- the main script's call: answered (reported, total, ms) once every pair
  -- has reported, or failed at the first wrong report
  start = function(self, clients)
    self.waiter = defer()
    local me, rounds = troupe.self(), self.rounds
    self.t0 = now()
    for i = 1, #clients do
      local ok, err = clients[i]:send("go", rounds, me)
      if not ok then return fail(self, ("cannot start pair %d: %s"):format(i, tostring(err))) end
    end
  end,
  done = function(self, id, count)
    if self.seen[id] then return fail(self, ("pair %s reported twice"):format(tostring(id))) end
    if count ~= self.rounds then
      return fail(self, ("pair %s reported %s round trips, want %d"):format(tostring(id), tostring(count), self.rounds))
    end
    self.seen[id] = true
    self.reported = self.reported + 1
    self.total = self.total + count
    if self.reported == self.pairs then finish(self) end
  end,
  failed = function(self, id, why)
    fail(self, ("pair %s failed: %s"):format(tostring(id), tostring(why)))
  end,
}

-- "4 schedulers; clients per scheduler: 250 250 250 250; ..." on stderr
local function placement(clients)
  if not troupe.schedulers then
    return ("1 scheduler (no troupe.schedulers in this host); %d clients"):format(#clients)
  end
  local nsched = troupe.schedulers()
  if not troupe.scheduler then
    return ("%d scheduler%s (no troupe.scheduler in this host); %d clients")
      :format(nsched, nsched == 1 and "" or "s", #clients)
  end
  local per, split = {}, 0
  for k = 1, nsched do per[k] = 0 end
  for i = 1, #clients do
    local c, s = clients[i]:call("where")
    per[c] = (per[c] or 0) + 1
    if s ~= c then split = split + 1 end
  end
  local counts = {}
  for k = 1, nsched do counts[k] = tostring(per[k]) end
  return ("%d scheduler%s; clients per scheduler: %s; pairs split across schedulers: %d")
    :format(nsched, nsched == 1 and "" or "s", table.concat(counts, " "), split)
end

B.main(function()
  B.check(PAIRS >= 1 and ROUNDS >= 1, "parallel: need at least 1 pair and 1 round trip (got %d, %d)", PAIRS, ROUNDS)
  local clients = {}
  for i = 1, PAIRS do clients[i] = troupe.spawn(CLIENT, i) end
  -- one call to each client: every init (and its server's spawn) has run
  -- before the clock starts
  for i = 1, PAIRS do clients[i]:call("where") end
  io.stderr:write("parallel: ", placement(clients), "\n")
  io.stderr:flush()

  local collector = troupe.spawn(Collector, PAIRS, ROUNDS)
  local reported, total, ms = collector:call_with(B.forever, "start", clients)
  B.check(reported ~= nil, "parallel: %s", tostring(total))
  B.check(reported == PAIRS, "parallel: %s pairs reported, want %d", tostring(reported), PAIRS)
  B.check(total == PAIRS * ROUNDS, "parallel: %s round trips in all, want %d", tostring(total), PAIRS * ROUNDS)
  B.report("parallel", B.rate(total, ms), "calls/s")
end)
