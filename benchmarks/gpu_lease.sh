#!/usr/bin/env bash
# One lent GPU machine, one call: the GPU check (issue 21), then the evidence run (issue 22), within
# LEASE_SECONDS (default 540: one call of the device tool with timeout_s=600).
#
# Why this split: a lease is 15 minutes of device time, the machine's start included (2-4 minutes), and
# a call at most 10. The whole check (about 7.5 minutes) and both evidence grids (about 9) do not fit
# one lease, so the first lease runs what is a bug when it fails before what is a figure:
#   1. the check's property sections (CHECK_SECTIONS, default "env gpu_tests runs timeline": the GPU
#      tests, kill-and-resume, one rank under NCCL, host syncs in the trainer's step of base at 512;
#      about 4.5 minutes, CHECK_SECONDS=300 at most),
#   2. the Cora grid of the evidence run (EVIDENCE_SECTIONS, default "env graph report") with the
#      minutes left (GRAPH_MINUTES: what remains less a minute of slack; skipped below 2 minutes).
# The throughput section (stock against ours: only stretch targets and the 1.0x floor) and the
# Wikispeedia grid are a second lease's: CHECK_SECTIONS="env throughput" EVIDENCE_SECTIONS="env ablation
# report" (ABLATION_MINUTES likewise from what is left).
#
#   here:  bash benchmarks/gpu_evidence.sh pack     # .evidence/: the data and tokenizer both read
#   there: run(command="OUT=$OUT bash benchmarks/gpu_lease.sh", carry=[".evidence"], timeout_s=600)
# A call that fails early leaves the lease time for a second one; give the machine back after.
#
# OUT gets four files (the device tool brings back eight at most): lease.log (this script's output),
# check_summary.md (the check's verdict and figures), evidence_results.md (the grids' results) and
# lease.tar.gz (every section's file of both). The exit status is the check's (0, 1 FAIL, 3 MISS),
# else 1 where the evidence run failed.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-/tmp/gpu_lease}"
lease_seconds="${LEASE_SECONDS:-540}"
work="$(mktemp -d /tmp/gpu-lease-XXXX)"
started=$(date +%s)
mkdir -p "$out" "$work/check" "$work/evidence"
exec > >(tee "$out/lease.log") 2>&1

echo "== the GPU check: ${CHECK_SECTIONS:=env gpu_tests runs timeline} ($(date +%T))"
SECTIONS="$CHECK_SECTIONS" OUT="$work/check" CHECK_SECONDS="${CHECK_SECONDS:-300}" bash benchmarks/gpu_check.sh
check_status=$?

left=$(( lease_seconds - ($(date +%s) - started) - 30 ))  # 30 s to pack the files
: "${EVIDENCE_SECTIONS:=env graph report}"
minutes="$(awk "BEGIN { m = ($left - 60) / 60; print (m > 6 ? 6 : m) }")"  # 6: issue 22's most for a grid
evidence_status=0
if awk "BEGIN { exit !($minutes >= 2) }"; then
  echo "== the evidence run: $EVIDENCE_SECTIONS, $minutes minutes a grid ($(date +%T), ${left} s left)"
  SECTIONS="$EVIDENCE_SECTIONS" OUT="$work/evidence" GRAPH_MINUTES="${GRAPH_MINUTES:-$minutes}" \
    ABLATION_MINUTES="${ABLATION_MINUTES:-$minutes}" bash benchmarks/gpu_evidence.sh
  evidence_status=$?
else
  echo "== the evidence run skipped: ${left} s left, under the 2 minutes a grid needs at the least"
  evidence_status=1
fi

[ -f "$work/check/summary.md" ] && cp "$work/check/summary.md" "$out/check_summary.md"
[ -f "$work/evidence/results.md" ] && cp "$work/evidence/results.md" "$out/evidence_results.md"
tar -czf "$out/lease.tar.gz" -C "$work" check evidence
rm -rf "$work"
echo "gpu lease: $(( $(date +%s) - started )) s; check exit $check_status, evidence exit $evidence_status; files in $out"
[ "$check_status" -ne 0 ] && exit "$check_status"
exit "$evidence_status"
