#!/usr/bin/env bash
# The benchmark workloads of tests/bench at tiny sizes: correctness only (each
# workload checks its own results), no timing assertions. Also builds and runs
# the C pingpong against the build's static library (with the sanitizers when
# the build has them).
# Env (set by ctest): TROUPE (the troupe binary), TROUPE_BINARY_DIR,
# TROUPE_SANITIZE; cwd is the source directory.
set -uo pipefail
: "${TROUPE:?TROUPE must name the troupe binary}"
src=${TROUPE_SOURCE_DIR:-$(pwd)}
bin=${TROUPE_BINARY_DIR:-$(dirname "$TROUPE")}
failed=0

check() { # check NAME EXPECTED-BENCH-NAMES -- COMMAND...
  local name=$1 expect=$2
  shift 3
  local out rc
  out=$(timeout --kill-after=10 120 "$@" 2>&1)
  rc=$?
  local why=""
  if [ $rc -ne 0 ]; then why="exit status $rc"
  else
    for e in $expect; do
      printf '%s\n' "$out" | grep -Eq "^BENCH $e [0-9]+ [^ ]+\$" || why="no 'BENCH $e' line"
    done
  fi
  if [ -n "$why" ]; then
    echo "FAIL $name ($why)"
    printf '%s\n' "$out" | sed 's/^/    /'
    failed=$((failed + 1))
  else
    echo "ok   $name"
  fi
}

check pingpong pingpong -- "$TROUPE" run "$src/tests/bench/pingpong.lua" 2000
check counting counting -- "$TROUPE" run "$src/tests/bench/counting.lua" 5000
check threadring threadring -- "$TROUPE" run "$src/tests/bench/threadring.lua" 2000
check callchain callchain -- "$TROUPE" run "$src/tests/bench/callchain.lua" 300
check spawn "spawn spawn.rss_per_actor spawn.call_all" -- \
  "$TROUPE" run "$src/tests/bench/spawn.lua" 2000
# parallel: 20 pairs x 200 round trips (over TROUPE_SCHEDULERS schedulers if set)
check parallel parallel -- "$TROUPE" run "$src/tests/bench/parallel.lua" 20 200
# pingpong_c: compile against the build's libtroupe.a
if command -v cc >/dev/null && command -v pkg-config >/dev/null && [ -f "$bin/libtroupe.a" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  flags=(-O1 -g)
  case "${TROUPE_SANITIZE:-OFF}" in
    ON|on|1|TRUE|true|YES|yes) flags+=("-fsanitize=address,undefined" -fno-omit-frame-pointer) ;;
  esac
  # shellcheck disable=SC2046
  if cc "${flags[@]}" -I "$src/host/include" $(pkg-config --cflags libuv) \
      "$src/tests/bench/pingpong_c.c" "$bin/libtroupe.a" \
      $(pkg-config --libs lua5.4 libuv msgpack) -ldl -lm -o "$tmp/pingpong_c" 2>"$tmp/cc.log"; then
    check pingpong_c pingpong_c -- "$tmp/pingpong_c" 2000
  else
    echo "FAIL pingpong_c (compile)"
    sed 's/^/    /' "$tmp/cc.log"
    failed=$((failed + 1))
  fi
else
  echo "skip pingpong_c (no cc, pkg-config or $bin/libtroupe.a)"
fi

[ $failed -eq 0 ] && echo "bench smoke: all ok" || echo "bench smoke: $failed failed"
[ $failed -eq 0 ]
