#!/usr/bin/env bash
# The README's first command without arguments: prepare the small example corpus that ships
# with the repository, training a WordPiece vocabulary on it (needs no download, no data).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/example}"
linkbert prepare --format jsonl --input examples/tiny_corpus.jsonl --tokenizer train --vocab-size 400 \
  --out "$out" --no-progress --overwrite  # the script's own folder: a second run replaces it
python -c "import json, sys; s = json.load(open('$out/stats.json')); sys.exit(0 if s['documents'] == 13 and s['links_resolved'] > 20 else 1)"
