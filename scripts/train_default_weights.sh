#!/usr/bin/env bash
# Reproduces the shipped weights (dstformer-small.mocap, .bandai-action, .bandai-text): converts the real mocap in
# ../shared/data/mocap to HDF5, pretrains the small lifter (MotionBERT's lift pretext), exports it in half precision,
# measures it with `mocli eval mocap`, then trains the Bandai action head and the text-aligned action model.
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

# The action classifier on Bandai's content labels (frozen lifter encoder) and the text-aligned variant.
LIC="CC BY-NC 4.0 (trained on Bandai Namco Research Motion data): non-commercial use"
ACT="$WORK/finetune/bandai-content"
[ -f "$ACT/model.pt" ] || $M --quiet --seed 0 finetune action --data "$WORK/h5/bandai.h5" \
    --init weights/dstformer-small.mocap.pt --freeze-backbone --clip-len 81 --batch 32 --epochs 1 \
    --set head.label_key=content_label --set head.max_persons=1 --set data.noise=true \
    --out-dir "$WORK/finetune" --name bandai-content
$M weights export "$ACT/best.pt" --out weights/dstformer-small.bandai-action.pt --half --overwrite --license "$LIC"
TXT="$WORK/pretrain/bandai-small-text1"
[ -f "$TXT/model.pt" ] || $M -q --seed 0 pretrain --pretext action-text --data "$WORK/h5/bandai.h5" \
    --init weights/dstformer-small.mocap.pt --clip-len 16 --batch 16 --epochs 1 --save-every 50 --lr 5e-4 \
    --precision fp32 --out-dir "$WORK/pretrain" --name bandai-small-text1 --set text.max_frames=64 \
    --set text.lift_weight=0 --set train.lr_head=1e-3 --set train.schedule=cosine --set train.warmup_steps=20 \
    --set train.min_lr_ratio=0.1 --set train.log_every=10
$M weights export "$TXT/best.pt" --out weights/dstformer-small.bandai-text.pt --half --overwrite --license "$LIC"
