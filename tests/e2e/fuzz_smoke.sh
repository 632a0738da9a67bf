#!/usr/bin/env bash
# A short libFuzzer run of every harness in tests/fuzz (about 6 s each),
# failing on any crash; longer runs: scripts/fuzz. Builds the harnesses into a
# temporary directory with clang, reusing this build's generated sources.
# Skipped (exit 0) in the sanitizer build (the harnesses carry ASan+UBSan
# already; once per suite is enough) and when clang or its fuzzer runtime is
# missing. Env (set by ctest): TROUPE_BINARY_DIR, TROUPE_SANITIZE; cwd is the
# source directory.
set -uo pipefail
src=${TROUPE_SOURCE_DIR:-$(pwd)}
bin=${TROUPE_BINARY_DIR:-}
secs=${FUZZ_SMOKE_SECONDS:-6}
case "${TROUPE_SANITIZE:-OFF}" in
  ON|on|1|TRUE|true|YES|yes) echo "skip fuzz smoke: runs in the normal build only"; exit 0 ;;
esac
command -v clang >/dev/null || { echo "skip fuzz smoke: no clang"; exit 0; }
rt=$(clang -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null)
if [ ! -f "$rt" ] && ! ls "$(dirname "$(clang -print-libgcc-file-name 2>/dev/null)")"/libclang_rt.fuzzer*.a >/dev/null 2>&1; then
  echo "skip fuzz smoke: no libFuzzer runtime (libclang-rt-14-dev)"; exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gen=()
[ -n "$bin" ] && gen=(-DTROUPE_FUZZ_GENERATED_DIR="$bin")
t0=$(date +%s)
if ! CC=clang cmake -S "$src" -B "$tmp/build" -DTROUPE_FUZZ=ON -DCMAKE_BUILD_TYPE=Release \
       "${gen[@]}" >"$tmp/cmake.log" 2>&1 ||
   ! cmake --build "$tmp/build" --target fuzzers -j"$(nproc)" >>"$tmp/cmake.log" 2>&1; then
  echo "FAIL fuzz smoke (build)"
  grep -E "error|Error" "$tmp/cmake.log" | head -40 | sed 's/^/    /'
  exit 1
fi
echo "fuzz smoke: built in $(( $(date +%s) - t0 )) s"
failed=0
for f in "$tmp"/build/fuzz/fuzz_*; do
  name=$(basename "$f")
  mkdir -p "$tmp/corpus/$name" "$tmp/art"
  if (cd "$tmp/art" && "$f" -max_total_time="$secs" -print_final_stats=1 \
        -artifact_prefix="$tmp/art/" "$tmp/corpus/$name" "$src/tests/fuzz/corpus/$name") \
        >"$tmp/$name.log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp/$name.log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$tmp/$name.log")
    echo "ok   $name ($execs runs, $rate/s)"
  else
    echo "FAIL $name"
    grep -B2 -A30 "ERROR\|runtime error\|deadly signal" "$tmp/$name.log" | head -60 | sed 's/^/    /'
    for a in "$tmp"/art/*; do [ -f "$a" ] && echo "    input (base64): $(base64 -w0 "$a")"; done
    failed=$((failed + 1))
  fi
done
[ $failed -eq 0 ]
