#!/usr/bin/env bash
# Fuzzes stagedoor: each cargo-fuzz target in turn, for N seconds each, at the lowest CPU
# priority, one libFuzzer job at a time; prints per target the executions, the coverage reached
# and whether it found anything.
#
#   bash fuzz/run.sh [seconds-per-target] [target ...]
#       (default: 60 s; path_route token config authorize_body)
#
# Environment:
#   STAGEDOOR_FUZZ_TOLERATE=id[,id…]  keep fuzzing past known, already reported invariant
#                                     violations (ids: utf8, idempotent, cache-exp, leak, fast-json, fast,
#                                     count, fields, roundtrip, message, zod, evaluate; see the targets)
#   FUZZ_SANITIZER=address|none       default address (AddressSanitizer)
#
# How cargo-fuzz runs here: the machine has only a stable toolchain, and cargo-fuzz passes
# nightly-only flags (-Zsanitizer=address, …). RUSTC_BOOTSTRAP=1 lets stable rustc accept them;
# stable's rust-std ships the sanitizer runtimes (librustc-stable_rt.asan.a). By hand, from the
# repository root:
#   cargo install cargo-fuzz --locked                              # once per machine
#   RUSTC_BOOTSTRAP=1 cargo fuzz build -O -a                       # all targets, ASan, debug assertions
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -O -a path_route -- -max_total_time=60
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -O -a path_route fuzz/regressions/path_route/<file>   # replay
# (FUZZ_SANITIZER=none builds with `--sanitizer none`: faster, catches fewer bugs; only the
# default, address, was exercised here.) This script builds with `cargo fuzz build` and then runs
# the binaries itself, so that libFuzzer's `-jobs=1` log lands in fuzz/logs/<target>/fuzz-0.log.
#
# Output (all ignored by git): fuzz/target (build), fuzz/corpus/<target> (working corpus, seeded
# from fuzz/seeds/<target>, tests/hostile/corpus.tsv and config/*.yaml; fuzz/regressions/<target>
# is read too, so every run replays them first), fuzz/artifacts/<target> (crashes),
# fuzz/logs/<target> (libFuzzer's log). Exit status 1 when any target found something.
set -euo pipefail

seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(path_route token config authorize_body)
case "$seconds" in '' | *[!0-9]*) echo "usage: $0 [seconds-per-target] [target ...]" >&2; exit 2 ;; esac

fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$fuzz_dir")"
sanitizer="${FUZZ_SANITIZER:-address}"
triple="$(rustc -vV | sed -n 's/^host: //p')"
bin_dir="$fuzz_dir/target/$triple/release"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

echo "== building (${targets[*]}; sanitizer $sanitizer)"
build_target=()
[ ${#targets[@]} -eq 1 ] && build_target=("${targets[0]}")   # one target, or all of them
(cd "$repo" && RUSTC_BOOTSTRAP=1 nice -n 19 cargo fuzz build -O -a --sanitizer "$sanitizer" "${build_target[@]}")
for target in "${targets[@]}"; do
    [ -x "$bin_dir/$target" ] || { echo "build failed: no $bin_dir/$target" >&2; exit 2; }
done

seed() {
    local target="$1" corpus="$fuzz_dir/corpus/$1"
    mkdir -p "$corpus"
    case "$target" in
        path_route)
            # The request targets of the hostile-input corpus's short-form cases.
            awk -F'\t' '!/^#/ && NF >= 5 && $5 !~ /^@raw / {
                    req = $5; sub(/\\r\\n.*/, "", req); split(req, w, " ");
                    if (w[2] != "") print $1 "\t" w[2] }' "$repo/tests/hostile/corpus.tsv" |
                while IFS=$'\t' read -r id request_target; do
                    printf '%b' "$request_target" >"$corpus/hostile-$id"
                done
            ;;
        config)
            for file in "$repo"/config/*.yaml; do cp "$file" "$corpus/repo-$(basename "$file")"; done
            ;;
    esac
}

summary=()
found_any=0
for target in "${targets[@]}"; do
    seed "$target"
    artifacts="$fuzz_dir/artifacts/$target"
    logs="$fuzz_dir/logs/$target"
    mkdir -p "$artifacts" "$logs"
    rm -f "$logs/fuzz-0.log"
    before="$(ls "$artifacts" | sort)"
    dict=()
    [ -f "$fuzz_dir/dicts/$target.dict" ] && dict=("-dict=$fuzz_dir/dicts/$target.dict")
    regressions=()   # replayed first, and mutated like the seeds
    [ -d "$fuzz_dir/regressions/$target" ] && regressions=("$fuzz_dir/regressions/$target")
    max_len=4096
    [ "$target" = config ] && max_len=8192
    [ "$target" = authorize_body ] && max_len=16384   # the 50-item seed is 8 KiB
    echo "== fuzzing $target for ${seconds}s (log: $logs/fuzz-0.log)"
    start=$(date +%s)
    status=0
    (cd "$logs" && nice -n 19 "$bin_dir/$target" \
        -max_total_time="$seconds" -jobs=1 -timeout=10 -rss_limit_mb=4096 -max_len="$max_len" \
        -print_final_stats=1 -artifact_prefix="$artifacts/" "${dict[@]}" \
        "$fuzz_dir/corpus/$target" "$fuzz_dir/seeds/$target" "${regressions[@]}") >"$logs/driver.txt" 2>&1 || status=$?
    elapsed=$(( $(date +%s) - start ))
    log="$logs/fuzz-0.log"
    touch "$log"
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1 || true)"
    last="$( (grep -E '^#[0-9]+' "$log" || true) | tail -n 1 | sed -E 's/^#([0-9]+)[[:space:]]+[A-Z]+[[:space:]]+/#\1 /')"
    new="$(comm -13 <(echo "$before") <(ls "$artifacts" | sort) | sed '/^$/d' | tr '\n' ' ' || true)"
    if [ -n "$new" ] || grep -q '^SUMMARY: ' "$log"; then
        found_any=1
        verdict="FOUND: ${new:-see log} ($(grep -m1 -E '^SUMMARY: |panicked at' "$log" || true))"
        grep -m1 -A2 'panicked at' "$log" || true
    else
        verdict="nothing found"
    fi
    line="$target: ${elapsed}s, ${execs:-?} executions, ${last:-no stats}; $verdict"
    summary+=("$line")
    echo "$line"
done

echo
echo "== summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
exit "$found_any"
