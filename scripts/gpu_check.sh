#!/usr/bin/env bash
# GPU check: sas-core on one CUDA or ROCm GPU, the parts CI (CPU only) cannot run.
# One command, under 8 minutes, nothing downloaded; one summary line per check, exit
# status non-zero on any failure; on a machine without a GPU it says so and exits 0.
#   pip install "sas-core[trl,openrlhf,tokenizers,math]" vllm   # then:
#   scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
exec timeout 480 "${PYTHON:-python}" scripts/gpu_check.py "$@"
