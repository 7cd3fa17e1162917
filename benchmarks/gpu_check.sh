#!/usr/bin/env bash
# The GPU check (issue 21): what a lent GPU machine should run, about 7.5 minutes on one H100/H200,
# never more than 8 (CHECK_SECONDS=480: every section's limit is cut to the time left). It FAILS (exit
# 1) where a property is broken and MISSES (exit 3) where only a stretch target is missed, one line per
# missed threshold with the figure and the threshold (benchmarks/gpu_check_summary.py says which is
# which, and why); 0 when all are met.
#   OUT=DIR bash benchmarks/gpu_check.sh       # DIR (default /tmp/gpu_check): one file per section + summary
#   SMOKE=1 OUT=DIR bash benchmarks/gpu_check.sh   # the same sections at tiny sizes on a CPU (CI: .ci/run)
# On a lent machine, with the evidence run in the same lease: benchmarks/gpu_lease.sh (its header has the
# plan). Environment: PYTHON (default python3; linkbert is this checkout's: PYTHONPATH=src, set below), DATA
# (a prepared corpus, segments of at most 254 tokens; default a synthetic one), TOKENIZER (its vocabulary;
# default .evidence/tokenizer, else the installed MiniLM's, else one trained on it), PEAK_TFLOPS (the card's
# dense bf16 peak where training_flops.DATASHEET_BF16_TFLOPS does not know its name), CHANGES=compiled (each
# change undone under compile too: about 45 s more a change, for a lease with time to spare), KEEP=1 (keep
# WORK, the runs and checkpoints), SECTIONS (default "env gpu_tests runs timeline throughput"; a section left
# out is reported "not run", its thresholds not checked, so that a lease can split the check over calls).
#
# Sections, in this order (the properties first, so a lease cut short loses targets), each under its own
# limit (the GPU's estimate, then the limit; estimates from the H200 run of docs/performance.md: base
# compiles in about 48 s, a process starts in about 10 s) and each writing OUT/NAME.txt (its output, its
# figures as JSON lines, then its status line); OUT holds 7 files, under the device tool's 8:
#   env         (10 s, limit 60)   the card, its datasheet peak, torch, transformers, the varlen kernel, liger
#   gpu_tests   (50 s, 150)        tests/test_gpu.py: CUDA's sync detector over a micro-batch and the update,
#               resume, the varlen kernel against its stand-in (the NCCL test deselected: runs measures it)
#   runs        (80 s, 150)        configs/pretrain/tiny.yaml as shipped (compiled, varlen, workers): killed
#               after a checkpoint and resumed (the repeated step's loss), one rank under NCCL against the
#               plain run (gpu_check.py: three processes, one inductor cache; tiny compiles in ~15 s)
#   timeline    (130 s, 180)       the trainer's own step of configs/pretrain/base.yaml at 512 (8 micro-batches
#               of 32): compile and the dynamic recompile ~95 s, 3+6+3 steps, the profile; host syncs, GPU
#               idle, kernel time by category, MFU both ways (gpu_step_timeline.py)
#   throughput  (180 s, 240)       base (compile ~48 s) and ModernBERT-base's shape (~80 s) on the shipped
#               path against stock HF with SDPA on the same batches, 3 rounds of 8 steps; base's kept
#               changes undone one at a time in eager mode (compile's own gain: eager against ours)
#   summary     (5 s)              summary.json, summary.md; the exit status (selftest in the smoke)
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
out="${OUT:-/tmp/gpu_check}"
work="$(mktemp -d /tmp/gpu-check-XXXX)"   # corpora, runs and checkpoints: not in OUT
mkdir -p "$out"
rm -f "$out"/{env,gpu_tests,runs,timeline,throughput}.txt "$out"/summary.{json,md}
started=$(date +%s)
tokenizer="${TOKENIZER:-}"
[ -z "$tokenizer" ] && [ -d .evidence/tokenizer ] && tokenizer="$PWD/.evidence/tokenizer"
variants=eager,eager+sdpa,eager+chunked-loss,eager+norms-autocast,eager+liger-loss
[ "${CHANGES:-}" = compiled ] && variants="$variants,sdpa,chunked-loss,norms-autocast,liger-loss"

if [ -n "${SMOKE:-}" ]; then  # tiny sizes, no compile (minutes on 2 CPU cores), varlen's CPU stand-in
  mode=smoke deadline="${CHECK_SECONDS:-900}" seq=128
  throughput=(--configs tiny,modernbert-tiny --config configs/pretrain/tiny.yaml --no-compile --attention varlen
              --seq 64 --batch 2 --steps 1 --rounds 1 --warmup 1 --variants eager+sdpa,eager+chunked-loss,liger-loss)
  throughput_second=()
  timeline=(--config configs/pretrain/tiny.yaml --seq 128 --batch 8 --micro-batch 4 --steps 2 --warmup 1
            --profiled-steps 1 --workers 2 --no-compile attention=varlen)
  runs=(configs/pretrain/tiny.yaml compile=false num_workers=2 max_length=128 batch_size=8 micro_batch_size=4
        max_steps=12 save_every=4 eval_pairs=8 attention=varlen)
  limits=(env=60 gpu_tests=60 runs=240 timeline=180 throughput=240)
else
  mode=gpu deadline="${CHECK_SECONDS:-480}" seq=512
  throughput=(--gpu --configs base --config configs/pretrain/base.yaml --steps 8 --rounds 3 --warmup 3
              --variants "$variants")
  throughput_second=(--gpu --configs modernbert-base --config configs/pretrain/base.yaml --steps 8 --rounds 3
                     --warmup 3)
  timeline=(--config configs/pretrain/base.yaml --steps 6 --warmup 3 --profiled-steps 2)
  runs=(configs/pretrain/tiny.yaml max_length=512 batch_size=64 micro_batch_size=32 max_steps=40 save_every=10
        eval_pairs=64)
  limits=(env=60 gpu_tests=150 runs=150 timeline=180 throughput=240)
fi
limit_of() { local item; for item in "${limits[@]}"; do [ "${item%%=*}" = "$1" ] && echo "${item#*=}"; done; }

# section NAME FUNCTION: FUNCTION (below) in a bash of its own under NAME's limit (cut to what is left of the
# deadline, 20 s kept for the summary), its output into OUT/NAME.txt, then a status line {"section", "exit",
# "seconds", "limit"}
section() {
  local name="$1" function="$2" limit left rc begun
  limit="$(limit_of "$name")"
  left=$(( deadline - ($(date +%s) - started) - 20 ))
  [ "$left" -lt "$limit" ] && limit="$left"
  echo "== $name (limit ${limit} s, $(date +%T))"
  begun=$(date +%s)
  if [ "$limit" -le 0 ]; then
    rc=124
    echo "no time left before the deadline (CHECK_SECONDS=$deadline)" > "$out/$name.txt"
  else
    timeout --kill-after=10 "$limit" bash -c "set -uo pipefail; $(declare -p PYTHON mode seq work tokenizer throughput \
      throughput_second timeline runs); $(declare -f env_section gpu_tests_section throughput_section corpus \
      timeline_section runs_section); $function" > "$out/$name.txt" 2>&1
    rc=$?
  fi
  printf '{"section": "%s", "exit": %d, "seconds": %d, "limit": %d}\n' "$name" "$rc" "$(( $(date +%s) - begun ))" \
    "$limit" >> "$out/$name.txt"
  grep -vE '^\{|USDT|Warning|warn\(' "$out/$name.txt" | tail -6
}

env_section() {
  if command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
  fi
  echo "mode $mode; cores $(nproc); tokenizer ${tokenizer:-default}; data ${DATA:-synthetic}"
  "$PYTHON" benchmarks/gpu_check.py env
}
throughput_section() {
  "$PYTHON" benchmarks/pretrain_throughput.py "${throughput[@]}" || return
  if [ ${#throughput_second[@]} -gt 0 ]; then "$PYTHON" benchmarks/pretrain_throughput.py "${throughput_second[@]}"; fi
}
corpus() {  # the prepared corpus the timeline and the runs read (built once, in WORK)
  if [ -n "${DATA:-}" ]; then echo "$DATA"; return; fi
  [ -d "$work/corpus/prepared" ] || "$PYTHON" benchmarks/gpu_check.py corpus "$work" $(( (seq - 4) / 2 )) $tokenizer \
    > /dev/null || return
  echo "$work/corpus/prepared"
}
gpu_tests_section() { "$PYTHON" -m pytest -q -p no:cacheprovider -rs tests/test_gpu.py -k "not nccl"; }
timeline_section() { local data; data="$(corpus)" && "$PYTHON" benchmarks/gpu_step_timeline.py --data "$data" "${timeline[@]}"; }
runs_section() { local data; data="$(corpus)" && "$PYTHON" benchmarks/gpu_check.py runs "$work/runs" "$data" "${runs[@]}"; }

for name in ${SECTIONS:-env gpu_tests runs timeline throughput}; do
  case "$name" in
    env|gpu_tests|runs|timeline|throughput) section "$name" "${name}_section" ;;
    *) echo "unknown section $name (env gpu_tests runs timeline throughput)" >&2; exit 2 ;;
  esac
done
echo "== summary ($(date +%T), $(( $(date +%s) - started )) s so far)"
status=0
if [ "$mode" = smoke ]; then
  "$PYTHON" benchmarks/gpu_check_summary.py "$out" smoke || status=$?
  "$PYTHON" benchmarks/gpu_check_summary.py selftest || status=1   # the thresholds fire on failing figures
else
  "$PYTHON" benchmarks/gpu_check_summary.py "$out" || status=$?
fi
echo "gpu check: $(( $(date +%s) - started )) s in all; files in $out"
[ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
exit $status
