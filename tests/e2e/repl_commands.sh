#!/usr/bin/env bash
# The REPL's commands against `troupe repl app.lua` with 1,000 actors: :ls
# (and a filter), :info, :state, :mailbox, :waits, :trace / Ctrl-C,
# :untrace, :send, :call, :spawn, :stop, :kill, :help.
. "$(dirname "$0")/repl_lib.bash"

cat >"$TMP/app.lua" <<'LUA'
local troupe = require "troupe"
local Worker = troupe.behaviour("Worker", {
  init = function(s, i) s.i = i end,
  ping = function(s) return s.i end,
})
workers = {}
for i = 1, 1000 do workers[i] = troupe.spawn(Worker, i) end
bank = troupe.spawn_with({name = "bank"}, "examples/account.lua", 50)
local Slow = troupe.behaviour("Slow", {
  nap = function(s, ms) troupe.sleep(ms) return "rested" end,
  hello = function(s, who) return "hi " .. who end,
})
slow = troupe.spawn_with({name = "slow"}, Slow)
local Caller = troupe.behaviour("Caller", {
  go = function(s, t) return t:call_with({timeout = math.huge}, "nap", 600000) end,
})
caller = troupe.spawn_with({name = "caller"}, Caller)
local so = os.getenv("TROUPE_BINARY_DIR")
if so then cacct = troupe.spawn(troupe.load_c(so .. "/bank_account.so").Account, 10) end
LUA

start r "$TROUPE repl $TMP/app.lua"
wait_for r ":help for commands"
type_line r ':help'
wait_for r ':reload ADDR|BEHAVIOUR FILE'
# :ls on 1,000 actors
type_line r ':ls'
wait_for r '1004 actors'
wait_for r 'Account        C'
wait_for r '  bank           Account        Lua  idle'
type_line r ':ls Worker'
wait_for r '1000 actors match '"'Worker'"
type_line r ':ls bank'
wait_for r '1 actors match '"'bank'"
# a caller waiting on a sleeping actor with messages queued
type_line r 'caller:send("go", slow)'
type_line r 'slow:send("hello", "ann") slow:send("hello", {name = "bob"})'
sleep 0.3
type_line r ':waits'
wait_for r '<actor 1003 Caller "caller"> -> <actor 1002 Slow "slow">  call'
wait_for r '<actor 1002 Slow "slow">  sleeping'
type_line r ':mailbox slow'
wait_for r '<actor 1002 Slow "slow">: 2 pending'
wait_for r 'send hello("ann") from'
wait_for r 'send hello({name = "bob"}) from'
type_line r ':ls caller'
wait_for r 'call->1002'
type_line r ':info caller'
wait_for r 'status     waiting on <actor 1002 Slow "slow"> (call,'
# :state: a Lua actor's state table; a C actor without a dump
type_line r ':state bank'
wait_for r '{balance = 50}'
type_line r ':state 500'
wait_for r '{i = 500}'
type_line r ':state cacct'
wait_for r 'C actor without a __state handler'
# :send / :call
type_line r ':send bank deposit 5'
wait_for r 'true'
type_line r ':call bank balance'
wait_for r '55'
type_line r ':call bank withdraw 1000'
wait_for r 'nil, {available = 55, reason = "insufficient funds", requested = 1000}'
# :trace prints each message in and out, until Ctrl-C
type_line r ':trace bank'
wait_for r 'tracing <actor 1001 Account "bank">'
type_line r 'bank:call("deposit", 7)'
wait_for r '<actor 1001 Account "bank"> <- <actor '
wait_for r 'call deposit(7)'
wait_for r '<actor 1001 Account "bank"> => ok 62'
type_line r 'bank:call("withdraw", 1000)'
wait_for r '<actor 1001 Account "bank"> => failed {'
keys r C-c
wait_for r 'tracing stopped'
type_line r 'bank:call("deposit", 8)'
wait_for r '70'
[ "$(count r 'deposit(8)')" -eq 0 ] || fail "a message was traced after Ctrl-C"
type_line r ':trace slow'
wait_for r 'tracing <actor 1002 Slow'
type_line r ':untrace slow'
wait_for r 'stopped tracing slow'
# :spawn, :stop, :kill
type_line r ':spawn examples/account.lua 7'
wait_for r '<actor 1006 Account>'
type_line r ':call 1006 balance'
wait_for r $'7'
type_line r ':stop 1006'
wait_for r 'stopping <actor 1006 Account>'
type_line r ':kill caller'
wait_for r 'killed <actor 1003 Caller "caller">'
type_line r ':waits'
type_line r 'slow:alive(), caller:alive()'
wait_for r 'true, false'
type_line r ':info 1006'
wait_for r "no live actor '1006'"
type_line r ':frob'
wait_for r "unknown command ':frob'"
keys r C-d
wait_exit r
finish
