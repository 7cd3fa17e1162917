#!/usr/bin/env bash
# Evidence at GPU scale: did the links help? Both grids in their gpu modes, in one 10-minute call on
# one H100 (issue 22; docs/graph_experiment.md and docs/ablation.md, "On a GPU"). Never run by CI
# except as its CPU smoke (SMOKE=1, in .ci/run).
#
# How to run it on a lent GPU machine (the repository travels to it; ../shared/data does not):
#   here:  bash benchmarks/gpu_evidence.sh pack          # copies what the run reads (~52 MB: Cora,
#          # Wikispeedia, HotpotQA, MiniLM's tokenizer) into .evidence/, which .gitignore ignores
#   there: run(command="OUT=$OUT bash benchmarks/gpu_evidence.sh", carry=[".evidence"], timeout_s=600)
#          # it finds .evidence/ by itself; the figures come back in $OUT/results.md and results.json
# Anywhere else: OUT=DIR LINKBERT_DATA=/path/to/shared/data bash benchmarks/gpu_evidence.sh
#
# What it needs: PYTHON (default python3) with torch (a CUDA build), transformers, tokenizers,
# safetensors, numpy, scipy, scikit-learn and pyyaml: a lent machine's own python3 has them all, so
# nothing is installed; linkbert is this checkout's (PYTHONPATH=src, set below). LINKBERT_DATA with
# cora/cora.jsonl, wikispeedia/ and hotpotqa/hotpot_distractor_1450.jsonl (default .evidence/data);
# TOKENIZER, the BERT tokenizer folder both corpora are prepared with (default .evidence/tokenizer,
# else MiniLM's when installed, else one trained on each corpus). The prepared corpora are built by
# the grids themselves, in WORK (default a new folder under /tmp; KEEP=1 keeps it).
#
# Sections, each under its own time limit (its grid's budget + 30 s), SECTIONS="env graph ablation
# report" by default (name fewer to split the run over two calls):
#   env.txt       the card, torch, transformers, cores
#   graph.log     linkbert experiment graph --mode gpu on Cora, GRAPH_MINUTES (default 4): a masked-LM
#                 first stage, then bert / linkbert / random-links / init (no-drp if the budget allows)
#                 x up to 5 seeds; few-shot probe and fine-tuning, withheld-link prediction
#   ablation.log  linkbert experiment ablation --mode gpu on Wikispeedia, ABLATION_MINUTES (default 4.5): a
#                 first stage, then bert / linkbert / random-links (no-drp if the budget allows);
#                 withheld-hyperlink prediction and HotpotQA distractor QA by question type
#   results.md, results.json   one section per experiment (each grid's own results, its status)
# Each grid's planner measures a probe on the device first and prints its plan (steps per cell,
# evaluations, expected minutes) before any training; it takes fewer seeds (down to 3) rather than
# cells shorter than 200 steps. The defaults fit one 10-minute call (about 9 minutes, 9.7 at most):
# give it timeout_s=600. A grid given 6 minutes (the most issue 22 allows it) gets more seeds and
# steps; both at 6 need two calls, each with its own results (GRAPH_MINUTES=6 SECTIONS="env graph
# report", then ABLATION_MINUTES=6 SECTIONS="env ablation report"), about 14 minutes of device time
# with the machine's start: all of a 15-minute lease.
# SMOKE=1: the same sections in the smoke modes on CPU, on small excerpts of the same data
# (benchmarks/gpu_evidence.py excerpts): a check of this script, about 3 minutes on 2 cores.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

if [ "${1:-}" = pack ]; then  # here, before a lease: what the run reads, into a folder that travels
  dest="${2:-.evidence}"
  src="${LINKBERT_DATA:?set LINKBERT_DATA to the shared data folder}"
  mkdir -p "$dest/data/cora" "$dest/data/wikispeedia" "$dest/data/hotpotqa" "$dest/tokenizer" || exit 1
  cp "$src/cora/cora.jsonl" "$dest/data/cora/" &&
    cp "$src"/wikispeedia/{plaintext_articles.tar.gz,links.tsv,categories.tsv,articles.tsv} "$dest/data/wikispeedia/" &&
    cp "$src/hotpotqa/hotpot_distractor_1450.jsonl" "$dest/data/hotpotqa/" || exit 1
  minilm="$("$PYTHON" -c 'from linkbert.experiments.grid import default_minilm; print(default_minilm() or "")')"
  if [ -n "$minilm" ]; then  # the vocabulary of the CPU runs, not the weights
    for f in vocab.txt tokenizer.json tokenizer_config.json special_tokens_map.json; do
      [ -f "$minilm/$f" ] && cp "$minilm/$f" "$dest/tokenizer/"
    done
  else
    rmdir "$dest/tokenizer"
  fi
  du -sh "$dest"  # .gitignore ignores .evidence/: name it in run's carry
  exit 0
fi

out="${OUT:-/tmp/gpu_evidence}"
work="${WORK:-$(mktemp -d /tmp/gpu-evidence-XXXX)}"
mkdir -p "$out" "$work"
sections="${SECTIONS:-env graph ablation report}"
data="${LINKBERT_DATA:-}"
[ -z "$data" ] && [ -d .evidence/data ] && data="$PWD/.evidence/data"
tokenizer="${TOKENIZER:-}"
[ -z "$tokenizer" ] && [ -d .evidence/tokenizer ] && tokenizer="$PWD/.evidence/tokenizer"
if [ -z "$data" ]; then
  echo "no data: set LINKBERT_DATA to the shared data folder, or run 'bash benchmarks/gpu_evidence.sh pack' first" >&2
  exit 2
fi
status=0
section() { echo "== $1 ($(date +%T))"; }

if [ -n "${SMOKE:-}" ]; then
  mode=smoke graph_minutes="${GRAPH_MINUTES:-3}" ablation_minutes="${ABLATION_MINUTES:-3}" slack=240
  touch "$work/smoke"
  "$PYTHON" benchmarks/gpu_evidence.py excerpts "$data" "$work/data" || exit 1
  data="$work/data"
  graph_extra=(--seeds 2 --device cpu) ablation_extra=(--seeds 2 --variants bert,linkbert,random-links --device cpu)
else
  mode=gpu graph_minutes="${GRAPH_MINUTES:-4}" ablation_minutes="${ABLATION_MINUTES:-4.5}" slack=30
  graph_extra=() ablation_extra=()
fi
tokenizer_args=()
[ -n "$tokenizer" ] && tokenizer_args=(--tokenizer "$tokenizer")

# grid NAME MINUTES ARGS...: one experiment under its time limit; its log in OUT, its status in WORK
grid() {
  local name="$1" minutes="$2"
  shift 2
  local limit started rc
  limit="$(awk "BEGIN { print int($minutes * 60 + $slack) }")"
  section "$name (budget $minutes min, limit $limit s)"
  started=$(date +%s)
  timeout "$limit" "$PYTHON" -m linkbert.cli experiment "$name" --mode "$mode" --out "$work/$name" \
    --budget-minutes "$minutes" "$@" > "$out/$name.log" 2>&1
  rc=$?
  echo "exit $rc" >> "$out/$name.log"
  printf '{"exit": %d, "seconds": %d, "limit": %d, "budget_minutes": %s}\n' "$rc" "$(( $(date +%s) - started ))" \
    "$limit" "$minutes" > "$work/$name.status"
  grep -E "^\[|^  " "$out/$name.log" | grep -vE "linkbert\.(finetune|model)" | tail -25
  [ "$rc" -eq 0 ] || status=1
}

for s in $sections; do
  case "$s" in
    env)
      section env
      { if command -v nvidia-smi > /dev/null; then nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
        else echo "no nvidia-smi"; fi
        "$PYTHON" -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA device', 'transformers', transformers.__version__)"
        echo "cores $(nproc); mode $mode; data $data; tokenizer ${tokenizer:-default}"; } 2>&1 | tee "$out/env.txt" ;;
    graph)
      grid graph "$graph_minutes" --corpus "jsonl:$data/cora/cora.jsonl" --init first-stage "${tokenizer_args[@]}" \
        "${graph_extra[@]}" ;;
    ablation)
      grid ablation "$ablation_minutes" --data-root "$data" --inits first-stage "${tokenizer_args[@]}" \
        "${ablation_extra[@]}" ;;
    report)
      section report
      "$PYTHON" benchmarks/gpu_evidence.py report "$out" "$work" || status=1 ;;
    *) echo "unknown section $s (env, graph, ablation, report)" >&2; status=1 ;;
  esac
done
[ -n "${KEEP:-}" ] || rm -rf "$work"
exit $status
