#!/usr/bin/env bash
# Regenerate requirements.txt from a working .venv (optional peers such as homapy and the CUDA
# runtime wheels stay out: they are extras, never required).
set -euo pipefail
cd "$(dirname "$0")/.."
{ head -2 requirements.txt; .venv/bin/pip freeze --exclude-editable | grep -viE "^(permbench|homapy|nvidia-|cupy|nvmath|mkl|intel-|tbb)"; } > requirements.txt.new
mv requirements.txt.new requirements.txt
