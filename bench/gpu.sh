#!/usr/bin/env bash
# The CUDA backend proven on a GPU machine, in one go (meant for well under 10 minutes of GPU time):
#   1. builds the addon with SDNODE_CUDA=ON for this machine's GPU only (ccache where present),
#   2. writes the full-size random SD 1.5 / SD 2.1 checkpoints if they are missing,
#   3. runs bench/gpu.mjs: every shared reference case on CUDA against the CPU engine (>= 40 dB)
#      and it/s at 512² (SD 1.5, 20 steps, euler_a, 1 and 4 images, flash attention on and off).
# Results go to $OUT (or bench/results/gpu): summary.md, the images, build.log.
#
#   bash bench/gpu.sh            # from the repository root
# Environment: SHARED (default: ./shared if present, else ../shared), MODELS (where the checkpoints
# are or get written; default /tmp/sdnode-models), OUT, CUDA_HOME (default /usr/local/cuda),
# PARTS (default parity,speed), SKIP_BUILD=1 (the addon is already built with CUDA).
# Offline machines: node_modules and .native-build/llama-3.22.1 must be there already (no registry).
set -euo pipefail
cd "$(dirname "$0")/.."

SHARED=${SHARED:-$([ -d shared ] && echo shared || echo ../shared)}
MODELS=${MODELS:-/tmp/sdnode-models}
OUT=${OUT:-bench/results/gpu}
PARTS=${PARTS:-parity,speed}
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
mkdir -p "$OUT" "$MODELS"
started=$(date +%s)
say() { echo "gpu.sh [$(( $(date +%s) - started )) s]: $*"; }

command -v nvidia-smi >/dev/null || { say "no nvidia-smi: not a CUDA machine"; exit 1; }
nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
export PATH="$CUDA_HOME/bin:$PATH"
command -v nvcc >/dev/null || { say "no nvcc (looked in PATH and $CUDA_HOME/bin): install the CUDA toolkit or set CUDA_HOME"; exit 1; }
nvcc --version | tail -2

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  # One architecture, this GPU's: 9.0 -> 90 (H100/H200), 8.9 -> 89, ...
  SDNODE_CUDA_ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' .')
  export SDNODE_CUDA=ON SDNODE_CUDA_ARCH
  say "building with CUDA for sm_$SDNODE_CUDA_ARCH"
  [ -d node_modules ] || npm install --ignore-scripts >>"$OUT/build.log" 2>&1
  # node-gyp would download Node's headers; an installed Node has them beside its binary.
  prefix=$(dirname "$(dirname "$(command -v node)")")
  [ -f "$prefix/include/node/node_api.h" ] && export npm_config_nodedir=${npm_config_nodedir:-$prefix}
  npm run build:native >>"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; say "CUDA build failed (log: $OUT/build.log)"; exit 1; }
  npx tsc -p tsconfig.json >>"$OUT/build.log" 2>&1
  say "built"
fi
node -e "import('./dist/lib/index.js').then(({ systemInfo }) => { const s = systemInfo(); console.log('backends:', s.backends.join(', ')); if (!s.backends.some((b) => b.includes('cuda'))) process.exit(1); })" \
  || { say "the addon has no CUDA backend"; exit 1; }

for spec in sd1:sd15-random-f16.safetensors sd2:sd21-random-f16.safetensors sdxl:sdxl-random-f16.safetensors; do
  family=${spec%%:*} file=$MODELS/${spec#*:}
  [ "$family" = sd2 ] && [[ "$PARTS" != *parity* ]] && continue
  if [ ! -s "$file" ]; then
    say "writing $file"
    node "$SHARED/tools/make-random-sd.mjs" --family "$family" --dtype f16 --seed 1 --out "$file"
  fi
done

if [[ "$PARTS" == *parity* ]] && [ ! -s "$MODELS/loras/lora-random-r8.safetensors" ]; then
  node "$SHARED/tools/make-random-lora.mjs" --seed 1 --out "$MODELS/loras/lora-random-r8.safetensors"
fi

say "running bench/gpu.mjs ($PARTS)"
node bench/gpu.mjs --models "$MODELS" --reference "$SHARED/reference" --backend cuda --parts "$PARTS" --out "$OUT"
say "done: $OUT/summary.md"
