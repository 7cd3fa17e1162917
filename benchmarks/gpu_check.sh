#!/usr/bin/env bash
# Everything a GPU machine should run, in about 6 minutes (each section has a limit; 13 in all) on one
# H100/H200 (never needed by CI; docs/performance.md has an H200's figures):
#   bash benchmarks/gpu_check.sh [OUT]        # figures into OUT (default: $OUT or /tmp/gpu_check)
# Environment: PYTHON (the interpreter with linkbert importable; default python), DATA (a prepared
# corpus with segments of at most 254 tokens, for seq 512; default: synthetic corpora), TOKENIZER
# (a BERT tokenizer folder for the synthetic corpora; default: one trained on them). SMOKE=1 runs
# every section at tiny sizes on any device (a CPU check of this script; DATA then needs segments of
# at most 62 tokens).
# Sections, each under its own time limit, each writing one file into OUT:
# 1. gpu_tests.txt: the gpu tests (CUDA's sync detector around a device-path micro-batch; a run resumes);
# 2. throughput.txt: base at seq 512 in bf16, the transformers backend against stock BertForPreTraining
#    (SDPA), and a ModernBERT-base-shaped model against ModernBertForMaskedLM; synthetic batches,
#    then base on DATA's real pairs;
# 3. timeline.txt: the trainer's own step on DATA (base, seq 512, batch 64, 4 DataLoader workers):
#    GPU idle time, kernels, blocking calls, DataLoader wait, tokens/s and model FLOP/s;
# 4. kill_resume.json: 100 steps of base, killed after the step-50 checkpoint and resumed: the
#    resumed run must end where a straight run does (up to the nondeterministic order of CUDA's
#    atomic adds in some backward kernels: the largest difference is reported);
# 5. compile.txt: the timeline again with torch.compile and max_predictions (one shape).
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
out="${1:-${OUT:-/tmp/gpu_check}}"
work="$(mktemp -d /tmp/gpu-check-XXXX)"   # corpora, runs and checkpoints (GBs): not in OUT
mkdir -p "$out"
data="${DATA:-}"
tokenizer="${TOKENIZER:-train}"
export PYTHONUNBUFFERED=1
section() { echo "== $1 ($(date +%T))"; }
if [ -n "${SMOKE:-}" ]; then
  preset=tiny seq=128 batch=8 steps=20 save=5 kill_at=10 budget=62
  throughput=(--own-backend transformers --precisions bf16 --steps 1 --rounds 1 --warmup 1 --max-predictions 24 --seq 128)
  timeline=(--preset tiny --seq 128 --batch 8 --steps 2 --warmup 1 --workers 2 --max-predictions 24)
else
  preset=base seq=512 batch=64 steps=100 save=50 kill_at=50 budget=254
  throughput=(--gpu --steps 8 --rounds 3 --warmup 3 --max-predictions 100 --peak-tflops 989)
  timeline=(--steps 10 --warmup 5)
fi

section env
{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
  "$PYTHON" -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0), 'transformers', transformers.__version__)"
  nproc; } 2>&1 | tee "$out/env.txt"

section "gpu tests"
timeout 120 "$PYTHON" -m pytest -q -p no:cacheprovider -rs tests/test_gpu.py > "$out/gpu_tests.txt" 2>&1
echo "exit $?" >> "$out/gpu_tests.txt"; tail -4 "$out/gpu_tests.txt"

section throughput
{ timeout 130 "$PYTHON" benchmarks/pretrain_throughput.py "${throughput[@]}" --configs "$preset,modernbert-base" \
    ${SMOKE:+--batch 2}
  echo "exit $?"
  if [ -n "$data" ]; then
    timeout 70 "$PYTHON" benchmarks/pretrain_throughput.py "${throughput[@]}" --configs "$preset" --data "$data"
    echo "exit $?"
  fi; } > "$out/throughput.txt" 2>&1
grep -E "tok/s|exit|Error" "$out/throughput.txt"

corpus_args=(--tokenizer "$tokenizer")
[ -n "$data" ] && corpus_args=(--data "$data")
section timeline
timeout 100 "$PYTHON" benchmarks/gpu_step_timeline.py "${corpus_args[@]}" "${timeline[@]}" > "$out/timeline.txt" 2>&1
echo "exit $?" >> "$out/timeline.txt"; grep -vE "^\{|USDT|Warning" "$out/timeline.txt" | tail -3

section "kill and resume"
timeout 210 "$PYTHON" - "$out" "$work" "$data" "$tokenizer" $preset $seq $batch $steps $save $kill_at $budget <<'PY' \
  2>&1 | tail -25 > "$work/kill_resume.log"
import json, random, signal, subprocess, sys, time
from pathlib import Path
out, work, data, tokenizer = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
preset, (seq, batch, steps, save, kill_at, budget) = sys.argv[5], map(int, sys.argv[6:])
if not data:
    from linkbert.prepare.build import prepare
    from linkbert.prepare.settings import PrepareConfig
    words = "graph link document paper protein cell model language text river city music history".split()
    rng = random.Random(0)
    records = [{"id": str(i), "title": f"doc {i}", "text": " ".join(rng.choice(words) for _ in range(2000)),
                "links": [str((i * 7 + 1) % 200)]} for i in range(200)]
    (work / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    data = str(work / "prepared")
    prepare(PrepareConfig(format="jsonl", input=str(work / "corpus.jsonl"), tokenizer=tokenizer, out=data,
                          segment_budget=budget, progress=False))
settings = [f"preset={preset}", f"max_length={seq}", f"batch_size={batch}", f"max_steps={steps}", "warmup_steps=10",
            f"save_every={save}", f"max_predictions={seq * 15 // 100 + 4}", "num_workers=4", "progress=false",
            "tracker=none", "eval_pairs=512", "dropout=0.1"]
cli = [sys.executable, "-m", "linkbert.cli", "pretrain", "--data", data]
started = time.time()
subprocess.run(cli + ["--out", str(work / "straight"), *settings], check=True)
straight_s = time.time() - started
killed = subprocess.Popen(cli + ["--out", str(work / "killed"), *settings])
while not (work / "killed" / "checkpoints" / f"step-{kill_at:08d}").exists() and killed.poll() is None:
    time.sleep(0.05)
killed.send_signal(signal.SIGKILL)
killed.wait()
at_kill = sorted(p.name for p in (work / "killed" / "checkpoints").glob("step-*"))
subprocess.run(cli + ["--out", str(work / "killed"), *settings], check=True)
import torch
from safetensors.torch import load_file
from linkbert.checkpoint import latest
a = load_file(latest(work / "straight") / "model.safetensors")
b = load_file(latest(work / "killed") / "model.safetensors")
summary = json.loads((work / "straight" / "summary.json").read_text())
resumed = json.loads((work / "killed" / "summary.json").read_text())
difference = {k: float((a[k].float() - b[k].float()).abs().max()) for k in a}
scale = {k: float(a[k].float().abs().max()) for k in a}
worst = max(difference, key=difference.get)
result = {"straight_seconds": round(straight_s, 1), "steps": summary["step"], "eval": summary["eval"],
          "resumed_eval": resumed["eval"], "kill_returncode": killed.returncode, "checkpoints_at_kill": at_kill,
          "train_seconds": summary["train_seconds"], "tokens": summary["tokens"],
          "resumed_equals_straight": all(torch.equal(a[k], b[k]) for k in a),
          "max_abs_difference": difference[worst], "worst_tensor": worst, "its_max_abs": scale[worst],
          "tensors_differing": sum(v > 0 for v in difference.values()), "tensors": len(a)}
(out / "kill_resume.json").write_text(json.dumps(result) + "\n")
print(json.dumps(result))
PY
cat "$work/kill_resume.log" | tail -3

section "compile"
timeout 130 "$PYTHON" benchmarks/gpu_step_timeline.py "${corpus_args[@]}" "${timeline[@]}" --compile \
  > "$out/compile.txt" 2>&1
echo "exit $?" >> "$out/compile.txt"; grep -vE "^\{|USDT|Warning" "$out/compile.txt" | tail -3

section summary
"$PYTHON" - "$out" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
def json_lines(name):
    path = out / name
    text = path.read_text() if path.exists() else ""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")] or [text[-600:]]
print("gpu tests:", (out / "gpu_tests.txt").read_text().strip().splitlines()[-2:])
for name in ("throughput.txt", "timeline.txt", "compile.txt", "kill_resume.json"):
    for figures in json_lines(name):
        print(name, json.dumps(figures))
PY
rm -rf "$work"
