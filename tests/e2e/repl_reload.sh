#!/usr/bin/env bash
# :reload swaps the handlers of running Lua actors at a message boundary,
# keeping their state and running the new behaviour's migrate(state); a file
# that fails to load changes nothing.
. "$(dirname "$0")/repl_lib.bash"

cat >"$TMP/counter.lua" <<'LUA'
local troupe = require "troupe"
return {
  init = function(s, n) s.count = n end,
  add = function(s, n) s.count = s.count + n return s.count end,
  get = function(s) return s.count end,
  nap = function(s, ms) troupe.sleep(ms) return "rested" end,
}
LUA
cat >"$TMP/counter2.lua" <<'LUA'
local troupe = require "troupe"
return {
  migrate = function(s) s.total = s.count * 100 s.count = nil end,
  add = function(s, n) s.total = s.total + n return s.total end,
  get = function(s) return s.total end,
  version = function(s) return 2 end,
  nap = function(s, ms) troupe.sleep(ms) return "rested" end,
}
LUA
cat >"$TMP/spinmig.lua" <<'LUA'
return {
  migrate = function(s) while true do end end,
  get = function(s) return "spun" end,
}
LUA
cat >"$TMP/badmig.lua" <<'LUA'
return {
  migrate = function(s)
    s.total = nil s.count = 7 s.extra = {1}
    setmetatable(s, {__index = function() return "x" end})
    error("half way")
  end,
  get = function(s) return "new" end,
}
LUA
cat >"$TMP/broken.lua" <<'LUA'
return { add = function(s, n) return s.count + end }
LUA
# the REPL inspects and reloads the actors of scheduler 1 (main code's files
# would otherwise go round-robin); c4 lives on scheduler 2
cat >"$TMP/app.lua" <<LUA
local troupe = require "troupe"
c1 = troupe.spawn_with({name = "c1", scheduler = 1}, "$TMP/counter.lua", 1)
c2 = troupe.spawn_with({name = "c2", scheduler = 1}, "$TMP/counter.lua", 2)
c3 = troupe.spawn_with({name = "c3", scheduler = 1}, "$TMP/counter.lua", 3)
c4 = troupe.spawn_with({name = "c4", scheduler = 2}, "$TMP/counter.lua", 4)
LUA

start r "TROUPE_SCHEDULERS=2 $TROUPE repl $TMP/app.lua"
wait_for r ":help for commands"
type_line r 'c1:call("add", 10)'
wait_for r '11'
# a file that does not load: nothing changes
type_line r ":reload c1 $TMP/broken.lua"
wait_for r "unexpected symbol near 'end'; nothing changed"
type_line r 'c1:call("add", 1), c1:call("version")'
wait_for r "has no handler 'version'"
type_line r 'c1:call("get")'
wait_for r '12'
# c3 is in the middle of a message: it is swapped when that message ends
type_line r 'c3:send("nap", 1500)'
type_line r 'troupe.sleep(100)'
type_line r ":reload Counter $TMP/counter2.lua"
wait_for r 'reloaded <actor 1 Counter "c1"> (migrate ran)'
wait_for r 'reloaded <actor 2 Counter "c2"> (migrate ran)'
wait_for r 'waiting for busy actors to finish their message...'
wait_for r 'reloaded <actor 3 Counter "c3"> (migrate ran)'
wait_for r 'reloaded <actor 1.1 Counter "c4"> (migrate ran)'
wait_for r '4 reloaded, 0 failed'
# the state was kept (and migrated); the new handlers answer
type_line r 'c1:call("get"), c2:call("get"), c3:call("get"), c1:call("version")'
wait_for r '1200, 200, 300, 2'
type_line r 'c2:call("add", 5)'
wait_for r '205'
type_line r ':state c1'
wait_for r '{total = 1200}'
# actors spawned from the file later get the new code too
type_line r "troupe.spawn(\"$TMP/counter.lua\", 1):call(\"version\")"
wait_for r $'2'
# one actor only
type_line r ":reload c2 $TMP/counter.lua"
wait_for r 'reloaded <actor 2 Counter "c2">'
wait_for r '1 reloaded, 0 failed'
type_line r 'c2:call("get"), c1:call("version")'
wait_for r 'nil, 2'
# a migrate that never returns is stopped; that actor keeps its code, the
# REPL and the host go on (on both schedulers)
type_line r ":reload c2 $TMP/spinmig.lua"
wait_for r 'migrate failed, kept the old code and state:'
wait_for r 'migrate ran for over 1000 ms'
wait_for r '0 reloaded, 1 failed'
type_line r 'c2:call("get")'
wait_for r 'nil'
# a migrate that raises halfway: the actor keeps its old code and state
type_line r ":reload c2 $TMP/badmig.lua"
wait_for r 'migrate failed, kept the old code and state:'
wait_for r 'half way'
type_line r ':state c2'
wait_for r '{total = 205}'
type_line r 'c2:call("get") == nil and ("old" .. " get") or "new get"'
wait_for r 'old get'
type_line r ":reload c4 $TMP/spinmig.lua"
wait_count r 'migrate ran for over 1000 ms' 2
type_line r 'c4:call("add", 0)'
wait_for r '400'
type_line r ":reload nobody $TMP/counter.lua"
wait_for r "no live actor or Lua behaviour 'nobody'"
# an actor of another scheduler (reloaded with the others above)
type_line r 'c4:call("add", 1)'
wait_for r '401'
# :state reads it on its scheduler's thread
type_line r ":state c4"
wait_for r "{total = 401}"
type_line r ":reload c4 $TMP/counter.lua"
wait_for r 'reloaded <actor 1.1 Counter "c4">'
wait_count r '1 reloaded, 0 failed' 2
# :ls lists the actors of every scheduler, each read on its own thread
type_line r ':ls Counter'
wait_for r 'actors match'
screen r | grep -E '^ +1\.1 +c4 +Counter +Lua +idle' >/dev/null ||
  fail ":ls does not list c4 (scheduler 2) as 1.1: $(screen r | tail -8)"
screen r | grep -E '^ +1 +c1 +Counter +Lua' >/dev/null || fail ":ls does not list c1"
# :info too reads an actor of another scheduler on that scheduler's thread
type_line r ':info c4'
wait_for r 'scheduler  2 of 2'
wait_for r 'handled    3 messages'
wait_for r 'handlers   add, get, nap'
# and :mailbox (nothing queued: c4 is idle)
type_line r ':mailbox c4'
wait_for r '0 pending (private lane 0, public 0 of 1024)'
# and :waits: c4 naps on scheduler 2
type_line r 'c4:send("nap", 3000)'
type_line r 'troupe.sleep(100)'
type_line r ':waits'
wait_for r '<actor 1.1 Counter "c4">  sleeping'

keys r C-d
wait_exit r
finish
