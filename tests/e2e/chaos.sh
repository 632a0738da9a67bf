#!/usr/bin/env bash
# Chaos test (tests/e2e/chaos.lua): a supervision tree of 10,000 capped
# workers under a steady call load while random workers crash, spin past
# their CPU limit or allocate past their memory cap; every call must end
# exactly once and every permanent child must be alive at the end. The same
# size runs under ASan (about 5 s either way); the sanitizers report through
# the exit status. The per-death log lines go to a file, shown on failure.
# Env (set by ctest): TROUPE (the troupe binary), TROUPE_SANITIZE; cwd is the
# source directory. CHAOS_SEED=n reproduces a run's random choices.
set -uo pipefail
: "${TROUPE:?TROUPE must name the troupe binary}"
src=${TROUPE_SOURCE_DIR:-$(pwd)}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

start=$(date +%s%N)
timeout --kill-after=10 120 "$TROUPE" run "$src/tests/e2e/chaos.lua" 2>"$log"
rc=$?
end=$(date +%s%N)
deaths=$(grep -c 'ChaosWorker> ' "$log")
others=$(grep -v 'ChaosWorker> \(crashed\|timeout\|out_of_memory\): ' "$log" | grep -c .)
ms=$(( (end - start) / 1000000 ))
printf 'chaos: %s worker deaths logged; %d.%02d s in all\n' "$deaths" $((ms / 1000)) $((ms % 1000 / 10))
if [ $rc -ne 0 ] || [ "$others" -ne 0 ]; then
  echo "FAIL chaos (exit status $rc; $others unexpected stderr lines)"
  grep -v 'ChaosWorker> \(crashed\|timeout\|out_of_memory\): ' "$log" | head -100 | sed 's/^/    /'
  exit 1
fi
echo "ok   chaos"
