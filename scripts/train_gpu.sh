#!/usr/bin/env bash
# Trains a larger lifter on one CUDA GPU for about MINUTES minutes, then exports it with its log and measures it.
# Resumable: run it again with the same WORK_DIR after an interruption and training continues from its last
# checkpoint (written every 50 steps). The CPU path (scripts/train_default_weights.sh) stays the default recipe.
#
#   bash scripts/train_gpu.sh MINUTES [WORK_DIR]            (default WORK_DIR: runs/gpu)
#
# Environment:
#   PYTHON   a Python whose torch sees the GPU (default: python3; its torch is kept)
#   WHEELS   a folder of wheels to install mocli's missing dependencies from without an index (offline machines)
#   H5       folder holding bandai.h5, cmu_dance.h5, reactidle.h5, hdm05.h5 (default: WORK_DIR/h5, converted from
#            ../shared/data/mocap when absent)
#   MODEL    architecture (default dstformer-lite), BATCH (default 64), LR (default 5e-4), INIT (weights to start
#            from; default none: from scratch)
#
# What it does: installs mocli into a venv that sees the system torch, converts the mocap if needed, measures the
# training rate with a 30-step probe, sets the number of epochs so the cosine schedule ends within MINUTES, trains
# with bf16 autocast and the generalisation preset (held-out people, motions and cameras stay out), exports
# WORK_DIR/<MODEL>.gen.pt (fp16) and copies log.jsonl / log.csv / curves.png beside it, then runs
# `mocli eval generalisation` and `mocli eval mocap --cameras standard` into WORK_DIR/*.json.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:?usage: bash scripts/train_gpu.sh MINUTES [WORK_DIR]}
WORK=${2:-runs/gpu}
PY=${PYTHON:-python3}
MODEL=${MODEL:-dstformer-lite}
BATCH=${BATCH:-64}
LR=${LR:-5e-4}
H5=${H5:-$WORK/h5}
MOCAP=${MOCAP:-../shared/data/mocap}
mkdir -p "$WORK" "$H5"

# 1. Environment: a venv over the system site-packages keeps the machine's CUDA torch.
if [ ! -x "$WORK/venv/bin/mocli" ]; then
    "$PY" -m venv --system-site-packages "$WORK/venv"
    pip=("$WORK/venv/bin/python" -m pip install -q)
    if [ -n "${WHEELS:-}" ]; then
        "${pip[@]}" --no-index --find-links "$WHEELS" --no-deps -e .
        "${pip[@]}" --no-index --find-links "$WHEELS" h5py typer rich scipy pyyaml || true
    else
        "${pip[@]}" -e . --no-deps
        "${pip[@]}" h5py typer rich scipy pyyaml smplx trimesh matplotlib
    fi
fi
M="$WORK/venv/bin/mocli"
"$WORK/venv/bin/python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU visible')"

# 2. Data.
for src in bandai cmu_dance reactidle; do
    [ -f "$H5/$src.h5" ] && continue
    extra=()
    [ "$src" = cmu_dance ] && extra=(--native-fps 'salsa/*=60' --min-frames 10)  # salsa headers say 120 fps
    $M -q prepare dataset bvh "$MOCAP/$src.tar.xz" --out "$H5/$src.h5" "${extra[@]}"
done
[ -f "$H5/hdm05.h5" ] || $M -q prepare dataset amc "$MOCAP/hdm05.tar.xz" --out "$H5/hdm05.h5"
DATA=(--data "$H5/bandai.h5" --data "$H5/cmu_dance.h5" --data "$H5/reactidle.h5" --data "$H5/hdm05.h5")
COMMON=(--preset pretrain_dstformer-small_generalise --model "$MODEL" --batch "$BATCH" --precision bf16
        --set train.schedule=cosine --set train.warmup_steps=200 --set train.min_lr_ratio=0.05
        --set train.log_every=20 --set data.num_workers=6)
[ -n "${INIT:-}" ] && COMMON+=(--init "$INIT")
RUN="$WORK/pretrain/$MODEL-gen"

# 3. Train (or resume): the epochs are set once, from a 30-step probe of this machine's rate.
if [ -f "$RUN/last.pt" ] && [ ! -f "$RUN/model.pt" ]; then
    $M --device cuda pretrain --resume "$RUN"
elif [ ! -f "$RUN/model.pt" ]; then
    rm -rf "$WORK/pretrain/probe"
    $M -q --device cuda pretrain "${DATA[@]}" "${COMMON[@]}" --out-dir "$WORK/pretrain" --name probe --epochs 1 \
        --max-steps 30 --lr "$LR"
    EPOCHS=$("$WORK/venv/bin/python" - "$WORK/pretrain/probe" "$MINUTES" <<'EOF'
import json, sys
from pathlib import Path
from mocli.config import config_from_dict
from mocli.training.lift_task import build_lift_data
run, minutes = Path(sys.argv[1]), float(sys.argv[2])
rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines() if x.strip()]
rate = [r["samples_per_s"] for r in rows if r.get("kind") == "train"][-1]  # clips/s, data loading included
train_set, _ = build_lift_data(config_from_dict(json.loads((run / "config.json").read_text())))
clips = len(train_set.active_clips(0))
print(max(1, int(0.85 * minutes * 60 * rate / clips)))  # 15 % kept for validation, checkpoints and export
EOF
)
    echo "training for $EPOCHS epoch(s) in about $MINUTES minutes"
    $M --seed 0 --device cuda pretrain "${DATA[@]}" "${COMMON[@]}" --out-dir "$WORK/pretrain" --name "$MODEL-gen" \
        --epochs "$EPOCHS" --lr "$LR" --save-every 50
fi

# 4. Export with its log, and measure.
OUTW="$WORK/$MODEL.gen.pt"
$M weights export "$RUN/best.pt" --out "$OUTW" --half --overwrite \
    --license "CC BY-NC 4.0 (trained on Bandai Namco Research Motion data): non-commercial use"
cp "$RUN/log.jsonl" "$RUN/log.csv" "$WORK/" && cp "$RUN/curves.png" "$WORK/" 2>/dev/null || true
$M --seed 0 --device cuda eval generalisation --data "$H5/hdm05.h5" --data "$H5/reactidle.h5" --model "$OUTW" \
    --json "$WORK/generalisation.json"
$M --seed 0 --device cuda eval mocap "${DATA[@]}" --model "$OUTW" --cameras standard --json "$WORK/eval_mocap.json"
