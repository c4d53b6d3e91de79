#!/usr/bin/env bash
# Reproduces weights/dstformer-small.mocap.pt: converts the real mocap in ../shared/data/mocap to HDF5, pretrains
# the small lifter (MotionBERT's lift pretext), exports it in half precision and measures it with `mocli eval mocap`.
# Resumable: run it again after an interruption and the training continues from its last checkpoint.
#   bash scripts/train_default_weights.sh [WORK_DIR]     (default WORK_DIR: runs/default-weights)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-runs/default-weights}
MOCAP=${MOCAP:-../shared/data/mocap}
M=.venv/bin/mocli
mkdir -p "$WORK/h5"
for src in bandai cmu_dance reactidle; do
    [ -f "$WORK/h5/$src.h5" ] && continue
    extra=()
    [ "$src" = cmu_dance ] && extra=(--native-fps 'salsa/*=60' --min-frames 10)  # salsa headers say 120 fps
    $M prepare dataset bvh "$MOCAP/$src.tar.xz" --out "$WORK/h5/$src.h5" "${extra[@]}"
done
DATA=(--data "$WORK/h5/bandai.h5" --data "$WORK/h5/cmu_dance.h5" --data "$WORK/h5/reactidle.h5")
RUN="$WORK/pretrain/small-mocap-v1"
if [ -f "$RUN/last.pt" ] && [ ! -f "$RUN/model.pt" ]; then
    $M -q pretrain --resume "$RUN"
elif [ ! -f "$RUN/model.pt" ]; then
    $M -q --seed 0 pretrain "${DATA[@]}" --model dstformer-small --clip-len 81 --stride 81 --batch 32 --epochs 2 \
        --lr 1e-3 --precision fp32 --name small-mocap-v1 --out-dir "$WORK/pretrain" --save-every 25 \
        --set train.schedule=cosine --set train.warmup_steps=30 --set train.min_lr_ratio=0.05 --set train.log_every=10
fi
$M weights export "$RUN/best.pt" --out weights/dstformer-small.mocap.pt --half --overwrite \
    --license "CC BY-NC 4.0 (trained on Bandai Namco Research Motion data): non-commercial use"
$M --seed 0 eval mocap "${DATA[@]}" --model weights/dstformer-small.mocap.pt --json "$WORK/eval_mocap.json"
