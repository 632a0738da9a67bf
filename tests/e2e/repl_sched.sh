#!/usr/bin/env bash
# The REPL on the actors of another scheduler (the host runs two, whatever
# TROUPE_SCHEDULERS says): :state renders their state, :trace prints their
# messages in and out (in order) until :untrace, :reload swaps their handlers.
. "$(dirname "$0")/repl_lib.bash"

cat >"$TMP/counter.lua" <<'LUA'
local troupe = require "troupe"
return {
  init = function(s, n) s.count = n s.tags = {"a", "b"} end,
  add = function(s, n) s.count = s.count + n return s.count end,
  get = function(s) return s.count end,
  nap = function(s, ms) troupe.sleep(ms) return "rested" end,
}
LUA
cat >"$TMP/fwd.lua" <<'LUA'
return { fwd = function(s, to, n) to:send("add", n) return to:call("get") end }
LUA
cat >"$TMP/app.lua" <<LUA
local troupe = require "troupe"
c4 = troupe.spawn_with({name = "c4", scheduler = 2}, "$TMP/counter.lua", 4)
f5 = troupe.spawn_with({name = "f5", scheduler = 2}, "$TMP/fwd.lua")
LUA

start r "TROUPE_SCHEDULERS=2 $TROUPE repl $TMP/app.lua"
wait_for r ":help for commands"
type_line r 'c4:call("get"), c4, f5'
wait_for r '4, <actor 1.1 Counter "c4">, <actor 1.2 Fwd "f5">'

# Tab completion of a scheduler-2 actor's handler names and of its name
tm send-keys -t main:r -l 'c4:call("ad'
keys r Tab
tm send-keys -t main:r -l '", 1000)'
keys r Enter
wait_for r 'c4:call("add", 1000)'
wait_for r '1004'
tm send-keys -t main:r -l ':state c'
keys r Tab
keys r Enter
wait_for r '{count = 1004, tags = {"a", "b"}}'
type_line r 'c4:call("add", -1000)' # (back to 4: :state below shows it)

# :state: rendered on scheduler 2's thread
type_line r ':state c4'
wait_for r '{count = 4, tags = {"a", "b"}}'
type_line r ':state 1.2'
wait_for r '{}'

# :trace: messages in and out of actors of scheduler 2
type_line r ':trace c4'
wait_for r 'tracing <actor 1.1 Counter "c4">'
type_line r ':trace f5'
wait_for r 'tracing <actor 1.2 Fwd "f5">'
type_line r 'c4:call("add", 2)'
wait_for r '<actor 1.1 Counter "c4"> <- <actor'
wait_for r 'call add(2)'
wait_for r '<actor 1.1 Counter "c4"> => ok 6'
type_line r 'f5:call("fwd", c4, 3)'
wait_for r '<actor 1.2 Fwd "f5"> => ok 9'
wait_for r '<actor 1.1 Counter "c4"> => ok 9'
# one actor's lines in the order it made them
order=$(screen r | grep -E '^[0-9:.]+ <actor 1\.2 Fwd "f5"> (<-|->|=>) ' |
  sed -E 's/.*"f5"> (<-|->|=>) .*(fwd\(|send add\(3\)|call get\(\)|ok 9).*/\1 \2/' | tr '\n' '|')
[ "$order" = "<- fwd(|-> send add(3)|-> call get()|=> ok 9|" ] ||
  fail "f5's trace lines out of order or missing: $order"
screen r | grep -F '<actor 1.1 Counter "c4"> <- <actor 1.2 Fwd "f5"> send add(3)' >/dev/null ||
  fail "c4's trace misses the send from f5"
# a traced actor's send and call to an actor of the other scheduler
type_line r "g1 = troupe.spawn_with({scheduler = 1}, '$TMP/counter.lua', 70)"
type_line r 'f5:call("fwd", g1, 7)'
wait_for r '<actor 1.2 Fwd "f5"> => ok 77'
screen r | grep -E '<actor 1\.2 Fwd "f5"> -> <actor [0-9]+ Counter> send add\(7\)' >/dev/null ||
  fail "f5's send to scheduler 1 was not traced"
screen r | grep -E '<actor 1\.2 Fwd "f5"> -> <actor [0-9]+ Counter> call get\(\)' >/dev/null ||
  fail "f5's call to scheduler 1 was not traced"
# :untrace stops them
type_line r ':untrace c4'
wait_for r 'stopped tracing c4'
type_line r 'c4:call("add", 100)'
wait_for r '109'
type_line r 'f5:call("fwd", c4, 1000)'
wait_for r '<actor 1.2 Fwd "f5"> => ok 1109'
[ "$(count r 'add(100)')" -eq 0 ] || fail "c4 was traced after :untrace"
[ "$(count r 'c4"> => ok 1109')" -eq 0 ] || fail "c4 was traced after :untrace"
type_line r ':untrace'
wait_for r 'tracing nothing'
type_line r 'f5:call("fwd", c4, 1)'
wait_for r '1110'
[ "$(count r 'fwd(<actor 1.1 Counter "c4">, 1)')" -eq 0 ] || fail "f5 was traced after :untrace"
type_line r ':trace 1.99'
wait_for r "no live actor '1.99'"

# :reload: actors of both schedulers, each swapped on its own thread
cp "$TMP/counter.lua" "$TMP/live.lua"
type_line r "c1 = troupe.spawn_with({scheduler = 1}, \"$TMP/live.lua\", 1) c7 = troupe.spawn_with({scheduler = 2}, \"$TMP/live.lua\", 7) return c1:call(\"get\") + c7:call(\"get\")"
wait_for r '8'
type_line r 'c1, c7'
wait_for r ' Live>, <actor 1.3 Live>'
c1=$(screen r | grep -oE '<actor [0-9]+ Live>, <actor 1.3 Live>' | head -1 | sed 's/,.*//')
# a file that does not load changes nothing, on either scheduler
cat >"$TMP/live.lua" <<'LUA'
return { add = function(s, n) return s.count + end }
LUA
type_line r ":reload Live $TMP/live.lua"
wait_for r "unexpected symbol near 'end'; nothing changed"
type_line r '"v" .. tostring(c1:call("get")) .. tostring(c7:call("get"))'
wait_for r '"v17"'
type_line r "c8 = troupe.spawn_with({scheduler = 2}, \"$TMP/live.lua\", 8) return c8:call(\"add\", 1)"
wait_for r '9'
type_line r 'c8'
wait_for r '<actor 1.4 Live>'
cat >"$TMP/live.lua" <<'LUA'
local troupe = require "troupe"
return {
  migrate = function(s) s.total = s.count * 100 s.count = nil end,
  add = function(s, n) s.total = s.total + n return s.total end,
  get = function(s) return s.total end,
  version = function(s) return "v2" end,
  nap = function(s, ms) troupe.sleep(ms) return "rested" end,
}
LUA
# one actor of scheduler 2
type_line r ":reload c7 $TMP/live.lua"
wait_for r 'reloaded <actor 1.3 Live> (migrate ran)'
wait_for r '1 reloaded, 0 failed'
type_line r 'c7:call("version"), c7:call("get")'
wait_for r '"v2", 700'
type_line r ':state c7'
wait_for r '{tags = {"a", "b"}, total = 700}'
type_line r 'c1:call("version")'
wait_for r "has no handler 'version'"
# the behaviour on both: c7's second migrate fails (count is gone), it keeps
# its code; c8 is in a message (asleep) and is swapped when that ends
type_line r 'c8:send("nap", 1500)'
type_line r 'troupe.sleep(100)'
type_line r ":reload Live $TMP/live.lua"
wait_for r "reloaded $c1 (migrate ran)"
wait_for r 'waiting for busy actors to finish their message...'
wait_for r '<actor 1.3 Live>: migrate failed, kept the old code'
wait_for r 'reloaded <actor 1.4 Live> (migrate ran)'
wait_for r '2 reloaded, 1 failed'
type_line r 'c1:call("version"), c1:call("get"), c8:call("version"), c8:call("get"), c7:call("get")'
wait_for r '"v2", 100, "v2", 900, 700'
# a later spawn on scheduler 2 gets the new code
type_line r "troupe.spawn_with({scheduler = 2}, \"$TMP/live.lua\"):call(\"version\") .. \"!\""
wait_for r '"v2!"'

keys r C-d
wait_exit r
finish
