#!/usr/bin/env bash
# Everything a GPU machine should run, in about 8 minutes on one H100/H200 (never needed by CI):
#   bash benchmarks/gpu_check.sh [OUT]        # figures into OUT (default: $OUT or /tmp/gpu_check)
# 1. the gpu tests (CUDA's sync detector around a device-path micro-batch; a run trains and repeats);
# 2. throughput: base at seq 512 in bf16, the device path against stock BertForPreTraining (SDPA);
# 3. 100 steps of base on a synthetic corpus, killed at step ~50 and resumed: the resumed run must
#    end where a straight run does (the same weights up to the nondeterminism of CUDA's
#    scatter-add and attention backward kernels: the largest difference is reported).
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"   # the interpreter that has linkbert installed
out="${1:-${OUT:-/tmp/gpu_check}}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.csv" 2>&1
"$PYTHON" -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))" | tee "$out/torch.txt"

timeout 180 "$PYTHON" -m pytest -q -p no:cacheprovider tests/test_gpu.py 2>&1 | tail -15 | tee "$out/gpu_tests.txt"

timeout 150 "$PYTHON" benchmarks/pretrain_throughput.py --gpu --steps 8 --rounds 3 --warmup 2 --max-predictions 100 \
  2>&1 | tee "$out/throughput.txt" | tail -3

# 3. kill and resume: a synthetic corpus with the MiniLM (or a trained) tokenizer, base, 100 steps
"$PYTHON" - "$out" <<'PY'
import json, os, random, signal, subprocess, sys, time
from pathlib import Path
from linkbert.experiments.ablation.command import default_minilm
from linkbert.prepare import PrepareConfig, prepare
out = Path(sys.argv[1]); data = out / "corpus"
words = "graph link document paper protein cell model language text river city music history".split()
rng = random.Random(0)
records = [{"id": str(i), "title": f"doc {i}", "text": " ".join(rng.choice(words) for _ in range(2000)),
            "links": [str((i * 7 + 1) % 200)]} for i in range(200)]
(out / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
minilm = default_minilm()
prepare(PrepareConfig(format="jsonl", input=str(out / "corpus.jsonl"), tokenizer=str(minilm) if minilm else "train",
                      out=str(data), segment_budget=254, progress=False, overwrite=True))
settings = ["preset=base", "max_length=512", "batch_size=64", "max_steps=100", "warmup_steps=10", "save_every=25",
            "max_predictions=100", "num_workers=4", "progress=false", "tensorboard=false", "eval_pairs=256"]
cli = [sys.executable, "-m", "linkbert.cli", "pretrain", "--data", str(data)]
started = time.time()
subprocess.run(cli + ["--out", str(out / "straight"), *settings], check=True)
straight_s = time.time() - started
killed = subprocess.Popen(cli + ["--out", str(out / "killed"), *settings])
while not (out / "killed" / "checkpoints" / "step-00000050").exists() and killed.poll() is None:
    time.sleep(0.2)
killed.send_signal(signal.SIGKILL); killed.wait()
subprocess.run(cli + ["--out", str(out / "killed"), *settings], check=True)
from safetensors.torch import load_file
from linkbert.checkpoint import latest
import torch
a, b = load_file(latest(out / "straight") / "model.safetensors"), load_file(latest(out / "killed") / "model.safetensors")
summary = json.loads((out / "straight" / "summary.json").read_text())
result = {"straight_seconds": round(straight_s, 1), "steps": summary["step"], "eval": summary["eval"],
          "resumed_equals_straight": all(torch.equal(a[k], b[k]) for k in a),
          "resumed_close_to_straight": all(torch.allclose(a[k].float(), b[k].float(), rtol=1e-2, atol=1e-3) for k in a),
          "max_abs_difference": max(float((a[k].float() - b[k].float()).abs().max()) for k in a)}
(out / "kill_resume.json").write_text(json.dumps(result, indent=2))
print(json.dumps(result))
PY
