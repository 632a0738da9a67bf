-- The Lua-written part of the troupe module. It runs once per Lua state, with
-- the module table (built in C) as its argument, and returns the runners the
-- host uses for an actor's first message (init, then on_start) and for a
-- graceful stop (on_stopping, which may veto by returning false, then
-- on_stopped), and the on_start half of the first one alone (the host runs a
-- plain init function itself, then this if the behaviour may have an
-- on_start). They run in the actor's coroutine, so they may call and sleep.
local troupe = ...

local function run_init(behaviour, self, ...)
  local init = behaviour.init
  if init then init(self, ...) end
  local on_start = behaviour.on_start
  if on_start then on_start(self) end
end

local function run_start(behaviour, self)
  local on_start = behaviour.on_start
  if on_start then on_start(self) end
end

local function run_stop(behaviour, self)
  local on_stopping = behaviour.on_stopping
  if on_stopping and on_stopping(self) == false then return false end
  local on_stopped = behaviour.on_stopped
  if on_stopped then on_stopped(self) end
  return true
end

-- troupe.errcode(err): the stable code of a system error value, or nil.
function troupe.errcode(err)
  if troupe.is_error(err) then return err.code end
  return nil
end

return run_init, run_stop, run_start
