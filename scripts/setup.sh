#!/usr/bin/env bash
# Creates .venv and installs mocli with the default 2D detector; `setup.sh dev` adds the test tools.
# MEDIAPIPE_HEAVY=1 also installs MediaPipe's heavy landmark model (--mediapipe-model heavy) from the npm registry.
# torch: a torch already importable in .venv is kept; otherwise the tested release is installed
# (TORCH_SPEC overrides it, e.g. TORCH_SPEC="torch==2.13.0" or a CUDA build from your own index).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
extras="mediapipe,anny"
[ "${1:-}" = "dev" ] && extras="mediapipe,anny,dev"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip=".venv/bin/python -m pip"
export PIP_DISABLE_PIP_VERSION_CHECK=1
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    $pip install -q "${TORCH_SPEC:-torch==2.13.0}"
fi
$pip install -q -e ".[${extras}]"
# mediapipe 0.10.21 ships its pose models in the wheel (offline); --no-deps skips jax/jaxlib it does not use.
.venv/bin/python -c "import mediapipe" 2>/dev/null || $pip install -q --no-deps "mediapipe==0.10.21"
# anny 0.6.2: the open body model of `infer --task mesh`; --no-deps skips warp-lang (unused: mocli skins in torch).
.venv/bin/python -c "import anny" 2>/dev/null || $pip install -q --no-deps "anny==0.6.2"
# MediaPipe's heavy landmark model is not in the wheel: npm's @mediapipe/pose (Apache-2.0) ships the same release.
if [ "${MEDIAPIPE_HEAVY:-0}" = "1" ]; then
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack -q "@mediapipe/pose@0.5.1675469404" >/dev/null)
    .venv/bin/mocli prepare mediapipe-heavy "$tmp"/mediapipe-pose-0.5.1675469404.tgz
    rm -rf "$tmp"
fi
