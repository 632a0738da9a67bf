#!/usr/bin/env bash
# troupe attach: a REPL against a running host through its control socket:
# the socket is 0600 and refuses other users; two REPLs at once, each with
# its own globals; a runaway line from an attached REPL is interrupted while
# the other REPL keeps working; a malformed control line gets an error line;
# a killed client leaves the host and its actors untouched; a stale socket
# is replaced; troupe.exit() ends the host and the client says so.
. "$(dirname "$0")/repl_lib.bash"

mkdir -m 700 "$TMP/ctl"
S=$TMP/ctl/host.sock
cat >"$TMP/app.lua" <<'LUA'
local troupe = require "troupe"
bank = troupe.spawn_with({name = "bank"}, "examples/account.lua", 50)
LUA

"$TROUPE" run "$TMP/app.lua" --control "$S" >"$TMP/host.log" 2>&1 &
HOST=$!
PIDS+=("$HOST")
end=$((SECONDS + WAIT))
while [ ! -S "$S" ] && [ $SECONDS -lt $end ]; do sleep 0.1; done
[ -S "$S" ] || fail "the host did not open $S: $(cat "$TMP/host.log")"
[ "$(stat -c %a "$S")" = 600 ] || fail "the socket's mode is $(stat -c %a "$S"), wanted 600"

# two REPLs at once
start a1 "$TROUPE attach $S"
start a2 "$TROUPE attach $S"
wait_for a1 "attached to $S"
wait_for a2 "attached to $S"
type_line a1 'bank:call("withdraw", 20)'
wait_for a1 '30'
type_line a1 'mine = 1'
type_line a2 'bank:call("balance"), mine'
wait_for a2 '30, nil'
type_line a1 ':ls'
wait_for a1 '1 actors'
wait_for a1 '  bank           Account'
# a runaway line from an attached REPL: interrupted; the host stays responsive
type_line a2 'while true do end'
sleep 0.5
type_line a1 '6 * 7'
wait_for a1 '42'
keys a2 C-c
wait_for a2 'interrupted'
type_line a2 'bank:call("deposit", 5)'
wait_for a2 '35'
# completion goes over the socket
tm send-keys -t main:a2 -l 'bank:call("wi'
keys a2 Tab
tm send-keys -t main:a2 -l '", 1)'
keys a2 Enter
wait_for a2 '34'

# malformed control lines: an error line each, the connection stays usable
printf 'BOGUS stuff\nPING extra\nLINE 1 + 2\nQUIT\n' | "$TROUPE" attach --raw "$S" >"$TMP/raw.out" 2>&1
grep -qF "ERR protocol: unknown request 'BOGUS'" "$TMP/raw.out" || fail "bad verb: $(cat "$TMP/raw.out")"
grep -qF "ERR protocol: PING takes no argument" "$TMP/raw.out" || fail "bad PING: $(cat "$TMP/raw.out")"
grep -qF "OUT 3" "$TMP/raw.out" || fail "no answer after bad lines: $(cat "$TMP/raw.out")"
# a line over the limit closes that connection only
head -c 70000 /dev/zero | tr '\0' 'x' | "$TROUPE" attach --raw "$S" >"$TMP/long.out" 2>&1
grep -qF "ERR protocol: line too long" "$TMP/long.out" || fail "long line: $(head -c 300 "$TMP/long.out")"
# garbage bytes
head -c 4000 /dev/urandom | "$TROUPE" attach --raw "$S" >/dev/null 2>&1
kill -0 "$HOST" 2>/dev/null || fail "the host died after malformed input"

# a client killed while its line runs: the host and its actors carry on
type_line a1 'troupe.sleep(3000)'
sleep 0.3
pid=$(tm display-message -p -t main:a1 '#{pane_pid}')
kill -9 "$pid"
wait_exit a1
sleep 0.3
kill -0 "$HOST" 2>/dev/null || fail "the host died with its client"
type_line a2 'bank:call("balance")'
wait_count a2 '34' 2
type_line a2 ':ls -a'
wait_for a2 '2 actors' # the bank and a2's own actor: a1's is gone

# another user is refused (when we can become one)
if [ "$(id -u)" = 0 ] && command -v runuser >/dev/null && id nobody >/dev/null 2>&1; then
  chmod 755 "$TMP" "$TMP/ctl"
  chmod 666 "$S" # past the file permissions: the peer check refuses
  out=$(runuser -u nobody -- "$TROUPE" attach --raw "$S" </dev/null 2>&1)
  echo "$out" | grep -q "refused\|another user" || fail "another uid was not refused: $out"
  chmod 600 "$S"
  chmod 700 "$TMP" "$TMP/ctl"
fi

# a second host cannot take a live socket
"$TROUPE" run "$TMP/app.lua" --control "$S" >"$TMP/host2.log" 2>&1
grep -qF "in use" "$TMP/host2.log" || fail "second host on a live socket: $(cat "$TMP/host2.log")"

# troupe.exit() from a REPL ends the host; the client says so
type_line a2 'troupe.exit(0)'
wait_for a2 'the host closed the connection'
wait_exit a2
end=$((SECONDS + WAIT))
while kill -0 "$HOST" 2>/dev/null && [ $SECONDS -lt $end ]; do sleep 0.1; done
kill -0 "$HOST" 2>/dev/null && fail "the host did not exit"
[ -e "$S" ] && fail "the socket file was left behind"

# a stale socket (host killed) is replaced; TROUPE_CONTROL works too
TROUPE_CONTROL="$S" "$TROUPE" run "$TMP/app.lua" >"$TMP/host3.log" 2>&1 &
H3=$!
PIDS+=("$H3")
end=$((SECONDS + WAIT))
while [ ! -S "$S" ] && [ $SECONDS -lt $end ]; do sleep 0.1; done
kill -9 "$H3"
wait "$H3" 2>/dev/null
[ -S "$S" ] || fail "no socket from TROUPE_CONTROL"
"$TROUPE" run "$TMP/app.lua" --control "$S" >"$TMP/host4.log" 2>&1 &
H4=$!
PIDS+=("$H4")
sleep 0.5
out=$(printf 'LINE bank:call("balance")\n' | "$TROUPE" attach --raw "$S" 2>&1)
echo "$out" | grep -qF "OUT 50" || fail "no host on a stale socket path: $out $(cat "$TMP/host4.log")"
kill -TERM "$H4"
wait "$H4" 2>/dev/null
finish
