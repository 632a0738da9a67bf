-- Chaos: a supervision tree (a root supervisor over SUBS sub-supervisors of
-- WORKERS permanent workers each, every worker capped in memory and CPU time)
-- under a steady call load from CLIENTS client actors, while a chaos actor
-- makes random workers crash, loop forever (killed by their cpu_limit with
-- reason timeout) or allocate past their memory cap (out_of_memory).
-- At the end:
--   * every call issued has ended exactly once (a value, the handler's own
--     error, or a system error code): issued == completed, no call id seen
--     twice, no client left hanging, no call timed out (the call timeout is
--     far longer than any legitimate wait, so a lost reply shows up as one);
--   * every successful call got x + 1;
--   * every sub-supervisor reports WORKERS specs and WORKERS active children,
--     the root reports SUBS active, and every worker answers a final call;
--   * the root supervisor is alive.
--
--   troupe run tests/e2e/chaos.lua [SUBS [WORKERS [SECONDS [CLIENTS [FAULTS_PER_TICK]]]]]
-- Defaults: 100 x 100 = 10,000 workers, 4 s of chaos, 200 clients, 2 faults
-- every 10 ms. CHAOS_SEED=n in the environment fixes the random seed.
local troupe = require "troupe"

local SUBS = tonumber(arg and arg[1]) or 100
local WORKERS = tonumber(arg and arg[2]) or 100
local SECONDS = tonumber(arg and arg[3]) or 4
local CLIENTS = tonumber(arg and arg[4]) or 200
local BURST = tonumber(arg and arg[5]) or 2
local TICK_MS = 10
local CALL_TIMEOUT = 20000 -- ms: nothing legitimate waits this long
local MAX_MEMORY = 256 * 1024
local CPU_LIMIT = 20 -- ms

local seed = tonumber(os.getenv("CHAOS_SEED") or "") or os.time()
math.randomseed(seed)

local function fail(fmt, ...)
  io.stderr:write(string.format("chaos: FAIL (seed %d): " .. fmt .. "\n", seed, ...))
  os.exit(1)
end

troupe.behaviour("ChaosWorker", {
  init = function(self, sub, id) self.sub, self.id = sub, id end,
  work = function(self, x) return x + 1 end,
  crash = function(self) error("chaos: crash") end,
  spin = function(self) while true do end end,
  hog = function(self)
    local t, i = {}, 0
    while true do
      i = i + 1
      t[i] = string.rep("x", 100) .. i
    end
  end,
})

-- Collects the clients' reports.
troupe.behaviour("ChaosCollector", {
  init = function(self) self.reports = {} end,
  done = function(self, r) self.reports[#self.reports + 1] = r end,
  reports = function(self) return self.reports end,
  count = function(self) return #self.reports end,
})

-- A client: calls work(x) on random workers until t_end, counting every
-- outcome once per call id; then reports to the collector.
troupe.behaviour("ChaosClient", {
  init = function(self, idx, subs, nworkers)
    self.idx, self.subs, self.nworkers = idx, subs, nworkers
    self.cache = {}
  end,
  run = function(self, t_end, collector)
    local r = { client = self.idx, issued = 0, completed = 0, dup = 0, ok = 0, wrong = 0,
                failed = 0, other = 0, lookups = 0, codes = {} }
    local seen = {}
    local subs, cache = self.subs, self.cache
    while troupe.now() < t_end do
      local si, wj = math.random(#subs), math.random(self.nworkers)
      local key = si * 1000000 + wj
      local addr = cache[key]
      if not addr then
        r.lookups = r.lookups + 1
        addr = subs[si]:call("whereis_child", wj)
        cache[key] = addr
      end
      if addr then
        r.issued = r.issued + 1
        local id = r.issued
        local x = math.random(1, 1 << 40)
        local ok, v, err = pcall(addr.call_with, addr, { timeout = CALL_TIMEOUT }, "work", x)
        if seen[id] then r.dup = r.dup + 1 end
        seen[id] = true
        r.completed = r.completed + 1
        if ok then
          if v == x + 1 then r.ok = r.ok + 1
          elseif v == nil and err ~= nil then r.failed = r.failed + 1
          else r.wrong = r.wrong + 1 end
        elseif troupe.is_error(v) then
          r.codes[v.code] = (r.codes[v.code] or 0) + 1
          cache[key] = nil -- it went away: look it up again next time
        else
          r.other = r.other + 1
        end
      end
    end
    collector:send("done", r)
  end,
})

-- The chaos monkey: every TICK_MS, `burst` faults on random workers (one-way
-- sends to cached addresses; a stale one is looked up again).
troupe.behaviour("ChaosMonkey", {
  init = function(self, subs, nworkers) self.subs, self.nworkers = subs, nworkers end,
  run = function(self, t_end, burst)
    local kinds = { "crash", "crash", "crash", "hog", "hog", "hog", "spin" } -- a spin costs CPU_LIMIT
    local n = { crash = 0, spin = 0, hog = 0, missed = 0 }
    local cache = {}
    for i, sub in ipairs(self.subs) do
      cache[i] = {}
      for _, c in ipairs(sub:call("which_children")) do cache[i][c.id] = c.address end
    end
    while troupe.now() < t_end do
      troupe.sleep(TICK_MS)
      for _ = 1, burst do
        local i, j = math.random(#self.subs), math.random(self.nworkers)
        local k = kinds[math.random(#kinds)]
        local w = cache[i][j]
        if not (w and w:send(k)) then
          w = self.subs[i]:call("whereis_child", j)
          cache[i][j] = w
          if not (w and w:send(k)) then k = "missed" end
        end
        n[k] = n[k] + 1
      end
    end
    return n
  end,
})

local t0 = troupe.now()
local children = {}
for i = 1, SUBS do
  local workers = {}
  for j = 1, WORKERS do
    workers[j] = { id = j, behaviour = "ChaosWorker", args = { i, j }, restart = "permanent",
                   max_memory = MAX_MEMORY, cpu_limit = CPU_LIMIT }
  end
  children[i] = { id = i, supervisor = { strategy = "one_for_one", intensity = 100000,
                                         period = 1, children = workers } }
end
local root = troupe.supervisor { strategy = "one_for_one", intensity = 10, period = 60,
                                 children = children }
local subs = {}
for i = 1, SUBS do
  subs[i] = root:call("whereis_child", i)
  if not subs[i] then fail("sub-supervisor %d did not start", i) end
end
local before = {}
for i = 1, SUBS do
  before[i] = {}
  for _, c in ipairs(subs[i]:call("which_children")) do before[i][c.id] = c.address end
end
local t_started = troupe.now()

local collector = troupe.spawn("ChaosCollector")
local clients = {}
local t_end = troupe.now() + SECONDS * 1000
for c = 1, CLIENTS do
  clients[c] = troupe.spawn("ChaosClient", c, subs, WORKERS)
  clients[c]:send("run", t_end, collector)
end
local monkey = troupe.spawn("ChaosMonkey", subs, WORKERS)
local faults = monkey:call_with({ timeout = SECONDS * 1000 + 60000 }, "run", t_end, BURST)

-- every client must report: a call that never ended would hold one back
local deadline = troupe.now() + CALL_TIMEOUT + 5000
while collector:call("count") < CLIENTS do
  if troupe.now() > deadline then
    fail("only %d of %d clients finished: calls left hanging", collector:call("count"), CLIENTS)
  end
  troupe.sleep(20)
end
local t_calls = troupe.now()

local tot = { issued = 0, completed = 0, dup = 0, ok = 0, wrong = 0, failed = 0, other = 0,
              lookups = 0, codes = {} }
for _, r in ipairs(collector:call("reports")) do
  for k, v in pairs(r) do
    if k == "codes" then
      for code, n in pairs(v) do tot.codes[code] = (tot.codes[code] or 0) + n end
    elseif tot[k] and k ~= "client" then
      tot[k] = tot[k] + v
    end
  end
end
local codes = {}
for code, n in pairs(tot.codes) do codes[#codes + 1] = code .. "=" .. n end
table.sort(codes)
local nerr = 0
for _, n in pairs(tot.codes) do nerr = nerr + n end

print(string.format("chaos: %d actors (%d supervisors + %d workers), %d clients, %.1f s of chaos",
                    SUBS * WORKERS + SUBS + 1, SUBS + 1, SUBS * WORKERS, CLIENTS, SECONDS))
print(string.format("chaos: faults injected: %d (crash %d, spin %d, hog %d; %d missed)",
                    faults.crash + faults.spin + faults.hog, faults.crash, faults.spin, faults.hog,
                    faults.missed))
print(string.format("chaos: calls issued %d, completed %d: ok %d, handler errors %d, " ..
                    "system errors %d (%s), wrong %d, duplicates %d, other %d; lookups %d",
                    tot.issued, tot.completed, tot.ok, tot.failed, nerr, table.concat(codes, " "),
                    tot.wrong, tot.dup, tot.other, tot.lookups))

if tot.issued ~= tot.completed then fail("%d calls issued, %d completed", tot.issued, tot.completed) end
if tot.dup > 0 then fail("%d calls ended twice", tot.dup) end
if tot.wrong > 0 then fail("%d calls returned a wrong value", tot.wrong) end
if tot.other > 0 then fail("%d calls raised something other than a system error", tot.other) end
if tot.failed > 0 then fail("%d calls returned a handler error (work never fails)", tot.failed) end
if (tot.codes.timeout or 0) > 0 then fail("%d calls timed out (lost replies?)", tot.codes.timeout) end
if tot.ok == 0 or tot.issued < CLIENTS then fail("too little load: %d calls", tot.issued) end
if faults.crash + faults.spin + faults.hog == 0 then fail("no faults injected") end

-- Every permanent child is alive: a spinner may still be burning its CPU
-- budget, so allow a moment for the last restarts.
local function census()
  local bad = {}
  for i = 1, SUBS do
    local cc = subs[i]:call("count_children")
    if cc.specs ~= WORKERS or cc.active ~= WORKERS then
      bad[#bad + 1] = string.format("sub %d: %d specs, %d active", i, cc.specs, cc.active)
    end
  end
  return bad
end
local bad = census()
local settle = troupe.now() + 5000
while #bad > 0 and troupe.now() < settle do
  troupe.sleep(50)
  bad = census()
end
if #bad > 0 then fail("children missing: %s", table.concat(bad, "; ")) end
local rc = root:call("count_children")
if rc.specs ~= SUBS or rc.active ~= SUBS then
  fail("root: %d specs, %d active, want %d", rc.specs, rc.active, SUBS)
end
for i = 1, SUBS do
  if root:call("whereis_child", i) ~= subs[i] then fail("sub-supervisor %d was restarted", i) end
end

-- ... and answers.
local restarted = 0
for i = 1, SUBS do
  for j = 1, WORKERS do
    local answered = false
    for _ = 1, 50 do
      local w = subs[i]:call("whereis_child", j)
      if w then
        local ok, v = pcall(w.call, w, "work", j)
        if ok and v == j + 1 then
          answered = true
          if w ~= before[i][j] then restarted = restarted + 1 end
          break
        end
      end
      troupe.sleep(20)
    end
    if not answered then fail("worker %d/%d does not answer", i, j) end
  end
end
if not root:alive() then fail("the root supervisor died") end
if restarted == 0 then fail("no worker was restarted") end

print(string.format("chaos: %d workers restarted at least once; all %d alive and answering",
                    restarted, SUBS * WORKERS))
print(string.format("chaos: tree up in %.2f s, load phase %.2f s, checks %.2f s",
                    (t_started - t0) / 1000, (t_calls - t_started) / 1000,
                    (troupe.now() - t_calls) / 1000))
print("chaos: ok")
root:stop()
troupe.exit(0)
