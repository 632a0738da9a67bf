-- Supervisors, OTP style, built on links and trap_exit. Loaded into every
-- Lua state with the module table as its argument; registers the named
-- behaviour "Supervisor" (so C can spawn one with tr_spawn_named) and adds
-- troupe.supervisor(spec) -> address.
--
-- spec = {
--   strategy = "one_for_one" | "one_for_all" | "rest_for_one",  (default one_for_one)
--   intensity = 3, period = 5,      -- at most `intensity` restarts in `period` seconds
--   children = {                     -- started in order, stopped in reverse order
--     { id = "acct",                 -- unique within the supervisor
--       behaviour = "Account",       -- a behaviour name, a .lua file, or code
--       args = { 50 },               -- spawn arguments
--       restart = "permanent",       -- permanent | transient | temporary
--       shutdown = 5000,             -- ms to stop gracefully before a kill
--       name = "bank",               -- optional registered name (moves on restart)
--       mailbox = 1024, max_memory = 0, cpu_limit = 0 },
--     { id = "inner", supervisor = { ...a nested spec... } },
--   },
-- }
local troupe = ...

local Supervisor = { _NAME = "Supervisor" }

local STRATEGIES = { one_for_one = true, one_for_all = true, rest_for_one = true }
local RESTARTS = { permanent = true, transient = true, temporary = true }

local function check_child(spec, i)
  local where = "child " .. tostring(spec and spec.id or i)
  assert(type(spec) == "table", where .. ": a child spec must be a table")
  assert(spec.id ~= nil, where .. ": id is required")
  assert(spec.behaviour ~= nil or spec.supervisor ~= nil,
         where .. ": behaviour (or supervisor) is required")
  local restart = spec.restart or "permanent"
  assert(RESTARTS[restart], where .. ": restart must be permanent, transient or temporary")
  assert(spec.args == nil or type(spec.args) == "table", where .. ": args must be a list")
  assert(spec.shutdown == nil or (type(spec.shutdown) == "number" and spec.shutdown > 0),
         where .. ": shutdown must be a time in ms")
end

-- The whole tree, checked before anything starts (troupe.supervisor raises
-- in its caller; a supervisor spawned by name crashes in init with the same
-- message).
local function check_spec(spec)
  assert(type(spec) == "table", "a supervisor needs a spec table")
  local strategy = spec.strategy or "one_for_one"
  assert(STRATEGIES[strategy], "unknown strategy '" .. tostring(strategy) .. "'")
  assert(spec.intensity == nil or (math.type(spec.intensity) == "integer" and spec.intensity >= 0),
         "intensity must be a count of restarts")
  assert(spec.period == nil or (type(spec.period) == "number" and spec.period > 0),
         "period must be a time in seconds")
  assert(spec.children == nil or type(spec.children) == "table", "children must be a list")
  local ids = {}
  for i, cs in ipairs(spec.children or {}) do
    check_child(cs, i)
    assert(not ids[cs.id], "duplicate child id '" .. tostring(cs.id) .. "'")
    ids[cs.id] = true
    if cs.supervisor ~= nil then check_spec(cs.supervisor) end
  end
end

local function start(self, child)
  local spec = child.spec
  local opts = { link = true, name = spec.name, mailbox = spec.mailbox,
                 max_memory = spec.max_memory, cpu_limit = spec.cpu_limit }
  if spec.supervisor then
    local sub = {}
    for k, v in pairs(spec.supervisor) do sub[k] = v end
    sub.parent = troupe.self()
    child.addr = troupe.spawn_with(opts, "Supervisor", sub)
  else
    child.addr = troupe.spawn_with(opts, spec.behaviour, table.unpack(spec.args or {}))
  end
  self.by_addr[child.addr] = child
  return child.addr
end

-- Stop one child gracefully (kill after its shutdown time); its on_exit is
-- ignored because it is no longer in by_addr.
local function terminate(self, child)
  local addr = child.addr
  if not addr then return end
  self.by_addr[addr] = nil
  child.addr = nil
  if addr:alive() then addr:shutdown(child.spec.shutdown or 5000) end
end

local function index_of(self, child)
  for i, c in ipairs(self.children) do if c == child then return i end end
end

function Supervisor.init(self, spec)
  check_spec(spec)
  troupe.trap_exit(true)
  self.strategy = spec.strategy or "one_for_one"
  assert(STRATEGIES[self.strategy], "unknown strategy '" .. tostring(self.strategy) .. "'")
  self.intensity = spec.intensity or 3
  self.period = (spec.period or 5) * 1000
  self.parent = spec.parent
  self.restarts = {}
  self.children = {}
  self.by_addr = {}
  self.ids = {}
  for i, cs in ipairs(spec.children or {}) do
    check_child(cs, i)
    assert(not self.ids[cs.id], "duplicate child id '" .. tostring(cs.id) .. "'")
    local child = { spec = cs }
    self.ids[cs.id] = child
    self.children[#self.children + 1] = child
    start(self, child)
  end
end

-- Too many restarts: stop every child (reverse order), then go down with a
-- reason that names the cause; our own parent supervisor sees it.
local function give_up(self)
  for i = #self.children, 1, -1 do terminate(self, self.children[i]) end
  error(string.format("reached maximum restart intensity: more than %d restarts in %g s",
                      self.intensity, self.period / 1000), 0)
end

local function note_restart(self)
  local now = troupe.now()
  local kept = {}
  for _, t in ipairs(self.restarts) do
    if now - t < self.period then kept[#kept + 1] = t end
  end
  kept[#kept + 1] = now
  self.restarts = kept
  if #kept > self.intensity then give_up(self) end
end

local function abnormal(reason) return reason ~= "normal" and reason ~= "stopped" end

function Supervisor.on_exit(self, who, reason, detail)
  local child = self.by_addr[who]
  if not child then
    if who == self.parent and abnormal(reason) then troupe.stop() end
    return
  end
  self.by_addr[who] = nil
  child.addr = nil
  local restart = child.spec.restart or "permanent"
  if restart == "temporary" or (restart == "transient" and not abnormal(reason)) then
    if restart == "temporary" then
      table.remove(self.children, index_of(self, child))
      self.ids[child.spec.id] = nil
    end
    return
  end
  note_restart(self)
  local i = index_of(self, child)
  if self.strategy == "one_for_one" then
    start(self, child)
  else
    local first = self.strategy == "one_for_all" and 1 or i
    for j = #self.children, first, -1 do terminate(self, self.children[j]) end
    for j = first, #self.children do start(self, self.children[j]) end
  end
end

-- Graceful stop: children go first, last started first.
function Supervisor.on_stopping(self)
  for i = #self.children, 1, -1 do terminate(self, self.children[i]) end
end

function Supervisor.which_children(self)
  local out = {}
  for i, c in ipairs(self.children) do
    out[i] = { id = c.spec.id, address = c.addr, restart = c.spec.restart or "permanent",
               supervisor = c.spec.supervisor ~= nil }
  end
  return out
end

function Supervisor.count_children(self)
  local alive = 0
  for _, c in ipairs(self.children) do if c.addr and c.addr:alive() then alive = alive + 1 end end
  return { specs = #self.children, active = alive }
end

function Supervisor.whereis_child(self, id)
  local c = self.ids[id]
  return c and c.addr
end

function Supervisor.start_child(self, spec)
  local ok, err = pcall(check_child, spec, #self.children + 1)
  if ok and spec.supervisor ~= nil then ok, err = pcall(check_spec, spec.supervisor) end
  if not ok then return troupe.fail(err) end
  if self.ids[spec.id] then return troupe.fail("duplicate child id '" .. tostring(spec.id) .. "'") end
  local child = { spec = spec }
  self.ids[spec.id] = child
  self.children[#self.children + 1] = child
  return start(self, child)
end

function Supervisor.terminate_child(self, id)
  local c = self.ids[id]
  if not c then return troupe.fail("no child '" .. tostring(id) .. "'") end
  terminate(self, c)
  table.remove(self.children, index_of(self, c))
  self.ids[id] = nil
  return true
end

troupe.behaviour("Supervisor", Supervisor)

function troupe.supervisor(spec, opts)
  local ok, err = pcall(check_spec, spec)
  if not ok then error(err, 2) end
  if opts then return troupe.spawn_with(opts, "Supervisor", spec) end
  return troupe.spawn("Supervisor", spec)
end
