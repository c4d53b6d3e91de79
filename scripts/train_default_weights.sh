#!/usr/bin/env bash
# Reproduces the shipped weights (dstformer-small.mocap, .video, .bandai-action, .bandai-text): converts the real
# mocap in ../shared/data/mocap to HDF5, pretrains the small lifter (MotionBERT's lift pretext), exports it in half
# precision, measures it with `mocli eval mocap`, trains the lifter for video on MediaPipe's 2D of rendered training
# sequences, then the Bandai action head and the text-aligned action model.
# Resumable: run it again after an interruption and the training continues from its last checkpoint.
#   bash scripts/train_default_weights.sh [WORK_DIR]     (default WORK_DIR: runs/default-weights)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-runs/default-weights}
MOCAP=${MOCAP:-../shared/data/mocap}
M=.venv/bin/mocli
# The stages after v7 trained in bf16 autocast (as fast as fp32 or faster on a CPU with AMX or AVX512-BF16, and step
# for step as good: docs/pretrain.md); on a CPU without native bf16 it is emulated and far slower, so they run in fp32
# there. LOWP=bf16|fp32 overrides the choice.
LOWP=${LOWP:-$(.venv/bin/python -c 'from mocli.utils.device import cpu_has_bf16; print("bf16" if cpu_has_bf16() else "fp32")')}
# Two copies of the data: h5/ with each rig's own pelvis, spine and thorax (--trunk rig: the stages up to v21 trained
# on these) and h5d/ with them derived from hips and shoulders as from a detector's joints (the converters' default;
# v21d on).
for trunk in rig detector; do
    dir="$WORK/h5"
    [ "$trunk" = detector ] && dir="$WORK/h5d"
    mkdir -p "$dir"
    for src in bandai cmu_dance reactidle; do
        [ -f "$dir/$src.h5" ] && continue
        extra=()
        [ "$src" = cmu_dance ] && extra=(--native-fps 'salsa/*=60' --min-frames 10)  # salsa headers say 120 fps
        $M prepare dataset bvh "$MOCAP/$src.tar.xz" --out "$dir/$src.h5" --trunk "$trunk" "${extra[@]}"
    done
    [ -f "$dir/hdm05.h5" ] || $M prepare dataset amc "$MOCAP/hdm05.tar.xz" --out "$dir/hdm05.h5" --trunk "$trunk"
done
DATA=(--data "$WORK/h5/bandai.h5" --data "$WORK/h5/cmu_dance.h5" --data "$WORK/h5/reactidle.h5")
# The lifter: two epochs from scratch (v1), then five more stages, each continued from the best checkpoint of the
# one before (v2 to v6; v4 to v6 take clips every 54 frames instead of 81: the later --stride wins).
LIC="CC BY-NC 4.0 (trained on Bandai Namco Research Motion data): non-commercial use"
COMMON=(--clip-len 81 --stride 81 --precision fp32 --out-dir "$WORK/pretrain" --set train.schedule=cosine
        --set train.min_lr_ratio=0.05 --set train.log_every=10)
stage() {  # stage NAME SEED ARGS...: train (or resume) one run until it has its model.pt
    local run="$WORK/pretrain/$1" seed=$2
    shift 2
    if [ -f "$run/last.pt" ] && [ ! -f "$run/model.pt" ]; then
        $M -q pretrain --resume "$run"
    elif [ ! -f "$run/model.pt" ]; then
        $M -q --seed "$seed" pretrain "${DATA[@]}" "${COMMON[@]}" --name "$1" "$@"
    fi
}
stage small-mocap-v1 0 --model dstformer-small --batch 32 --epochs 2 --lr 1e-3 --save-every 25 \
    --set train.warmup_steps=30
# (v2 ran its first 80 steps under a 3-epoch schedule, then was resumed with --epochs 2.)
stage small-mocap-v2 1 --init "$WORK/pretrain/small-mocap-v1/best.pt" --batch 32 --epochs 2 --lr 5e-4 \
    --save-every 20 --set train.warmup_steps=20
stage small-mocap-v3 2 --init "$WORK/pretrain/small-mocap-v2/best.pt" --batch 16 --epochs 2 --lr 5e-4 \
    --save-every 25 --set train.warmup_steps=20
stage small-mocap-v4 3 --init "$WORK/pretrain/small-mocap-v3/best.pt" --batch 16 --epochs 2 --lr 5e-4 \
    --stride 54 --save-every 25 --set train.warmup_steps=20
stage small-mocap-v5 4 --init "$WORK/pretrain/small-mocap-v4/best.pt" --batch 16 --epochs 1 --lr 4e-4 \
    --stride 54 --save-every 25 --set train.warmup_steps=20
stage small-mocap-v6 5 --init "$WORK/pretrain/small-mocap-v5/best.pt" --batch 16 --epochs 1 --lr 3e-4 \
    --stride 54 --save-every 25 --set train.warmup_steps=20
# v7, v8 and v9: the generalisation recipe (preset pretrain_dstformer-small_generalise: wider cameras, other bodies,
# tilted and lying bodies, other frame rates, detector faults; HDM05 added; what `mocli eval generalisation` scores
# left out), continued from v6 (v7: clips every 108 frames, fp32), from v7 (v8: every 54 frames, bf16) and from v8
# (v9: the same at a lower learning rate). They predate the preset's bent legs: off for them.
GEN=(--data "$WORK/h5/hdm05.h5" --preset pretrain_dstformer-small_generalise --batch 16 --save-every 25)
OLD=(--set data.bend_prob=0)
stage small-gen-v7 7 --init "$WORK/pretrain/small-mocap-v6/best.pt" "${GEN[@]}" "${OLD[@]}" --stride 108 \
    --epochs 1 --lr 3e-4 --set train.warmup_steps=15
stage small-gen-v8 8 --init "$WORK/pretrain/small-gen-v7/best.pt" "${GEN[@]}" "${OLD[@]}" --stride 54 --epochs 2 \
    --lr 2e-4 --precision "$LOWP" --set train.warmup_steps=10
stage small-gen-v9 9 --init "$WORK/pretrain/small-gen-v8/best.pt" "${GEN[@]}" "${OLD[@]}" --stride 54 --epochs 2 \
    --lr 1.5e-4 --precision "$LOWP" --set train.warmup_steps=10
$M weights export "$WORK/pretrain/small-mocap-v1/best.pt" --out "$WORK/dstformer-small.mocap-v1.pt" --half \
    --overwrite --license "$LIC"
$M weights export "$WORK/pretrain/small-gen-v9/best.pt" --out "$WORK/dstformer-small.mocap-v9.pt" --half \
    --overwrite --license "$LIC"
# v12: one epoch from v9 with the preset's bent legs and HDM05's clips three times an epoch (data.repeat, in the
# order of the --data files: bandai, cmu_dance, reactidle, hdm05); v14 and v16: one more epoch of the same each, from
# the one before; v19 and v21: one more each with ReActIdle's clips twice as well (the people who stand still). The
# shipped lifter is v21 (v20, the default before it, was the weighted mean 0.15 x v9 + 0.85 x v19).
stage small-gen-v12 10 --init "$WORK/dstformer-small.mocap-v9.pt" "${GEN[@]}" --stride 54 --epochs 1 --lr 1e-4 \
    --precision "$LOWP" --set train.warmup_steps=10 --set data.repeat=1,1,1,3
stage small-gen-v14 11 --init "$WORK/pretrain/small-gen-v12/best.pt" "${GEN[@]}" --stride 54 --epochs 1 --lr 1e-4 \
    --precision "$LOWP" --set train.warmup_steps=10 --set data.repeat=1,1,1,3
stage small-gen-v16 12 --init "$WORK/pretrain/small-gen-v14/best.pt" "${GEN[@]}" --stride 54 --epochs 1 --lr 1e-4 \
    --precision "$LOWP" --set train.warmup_steps=10 --set data.repeat=1,1,1,3
stage small-gen-v19 13 --init "$WORK/pretrain/small-gen-v16/best.pt" "${GEN[@]}" --stride 54 --epochs 1 --lr 1e-4 \
    --precision "$LOWP" --set train.warmup_steps=10 --set data.repeat=1,1,2,3
stage small-gen-v21 14 --init "$WORK/pretrain/small-gen-v19/best.pt" "${GEN[@]}" --stride 54 --epochs 1 --lr 1e-4 \
    --precision "$LOWP" --set train.warmup_steps=10 --set data.repeat=1,1,2,3
$M weights export "$WORK/pretrain/small-gen-v21/best.pt" --out "$WORK/dstformer-small.mocap-v21.pt" --half \
    --overwrite --license "$LIC"
# From here on the files with the detector's trunk (h5d/): v21d is v21's epoch from v19 on them, v22d and v23d one
# more epoch each of the same recipe, v25d one more from v23d, v26d and v26t one more from v25d (v26t with tilt
# ramps), s26 their mean, and v27t one more epoch from s26 with tilt ramps. The shipped lifter is v27t (v25d, v24 =
# the mean of v22d and v23d, and v21, trained on h5/, were the defaults before it).
DATA=(--data "$WORK/h5d/bandai.h5" --data "$WORK/h5d/cmu_dance.h5" --data "$WORK/h5d/reactidle.h5")
GEN=(--data "$WORK/h5d/hdm05.h5" --preset pretrain_dstformer-small_generalise --batch 16 --save-every 25)
REC=(--stride 54 --epochs 1 --lr 1e-4 --precision "$LOWP" --set train.warmup_steps=10 --set data.repeat=1,1,2,3)
stage small-gen-v21d 14 --init "$WORK/pretrain/small-gen-v19/best.pt" "${GEN[@]}" "${REC[@]}"
stage small-gen-v22d 15 --init "$WORK/pretrain/small-gen-v21d/best.pt" "${GEN[@]}" "${REC[@]}"
stage small-gen-v23d 16 --init "$WORK/pretrain/small-gen-v22d/best.pt" "${GEN[@]}" "${REC[@]}"
stage small-gen-v25d 17 --init "$WORK/pretrain/small-gen-v23d/best.pt" "${GEN[@]}" "${REC[@]}"
stage small-gen-v26d 18 --init "$WORK/pretrain/small-gen-v25d/best.pt" "${GEN[@]}" "${REC[@]}"
stage small-gen-v26t 18 --init "$WORK/pretrain/small-gen-v25d/best.pt" "${GEN[@]}" "${REC[@]}" \
    --set data.tilt_ramp_prob=0.5
$M weights average "$WORK/pretrain/small-gen-v26d/best.pt" "$WORK/pretrain/small-gen-v26t/best.pt" \
    --out "$WORK/dstformer-small.mocap-s26.pt" --half --overwrite --license "$LIC"
stage small-gen-v27t 19 --init "$WORK/dstformer-small.mocap-s26.pt" "${GEN[@]}" "${REC[@]}" \
    --set data.tilt_ramp_prob=0.5
$M weights export "$WORK/pretrain/small-gen-v27t/best.pt" --out "$WORK/dstformer-small.mocap-v27t.pt" --half \
    --overwrite --license "$LIC"
# v29s: one epoch from v27t with joints defined elsewhere on the body; v30c: one clean epoch from v29s. The shipped
# lifter for exact 2D (dstformer-small.mocap) was u2, the mean of v27t and v30c, until v45 (below).
stage small-gen-v29s 20 --init "$WORK/pretrain/small-gen-v27t/best.pt" "${GEN[@]}" "${REC[@]}" \
    --set data.tilt_ramp_prob=0.5 --set data.shift_prob=0.5 --set data.shift_m=0.04
stage small-gen-v30c 21 --init "$WORK/pretrain/small-gen-v29s/best.pt" "${GEN[@]}" "${REC[@]}" \
    --set data.tilt_ramp_prob=0.5
$M weights average "$WORK/dstformer-small.mocap-v27t.pt" "$WORK/pretrain/small-gen-v30c/best.pt" \
    --out "$WORK/dstformer-small.mocap-u2.pt" --half --overwrite --license "$LIC"
# The lifter for video (dstformer-small.video, the default of `mocli infer`): epochs from u2 (v33r, v34r, v35r)
# with 140 training sequences a file rendered as video and run through MediaPipe (paired: MediaPipe's 2D in, the
# mocap truth out); the first two files with cameras as drawn and the benchmark's one person, the others with
# bodies of at least 150 px and an outfit each (benchmarks/rendered_training.py; needs MediaPipe and the Anny body,
# as `mocli infer`). v33r: four files twice an epoch; v34r: four times; v35r: six files three times; v38l: eight
# (8 and 9 from a random frame of each sequence) three times at half the learning rate; v39, v40: eight again;
# v42: six new files (two from high cameras) six times; v43: two more from high cameras; v44: two more (one high).
RT=()
render() {  # render SEED SEQUENCES ARGS...: one paired file (made once), added to RT
    local seed=$1 n=$2 out="$WORK/rendered/rendered$1.h5"
    shift 2
    RT+=(--data "$out")
    [ -f "$out" ] && return
    mkdir -p "$WORK/rendered"
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/rendered_training.py --data "$WORK/h5d/bandai.h5" \
        --data "$WORK/h5d/cmu_dance.h5" --data "$WORK/h5d/reactidle.h5" --data "$WORK/h5d/hdm05.h5" \
        --sequences "$n" --frames 150 --seed "$seed" "$@" --out "$out"
}
for s in 0 1 2 3 4 5 6 7 8 9; do
    old=()
    [ "$s" -lt 2 ] && old=(--min-body 0 --look person)
    [ "$s" -ge 8 ] && old=(--start random)
    render "$s" 140 "${old[@]}"
done
stage small-gen-v33r 22 --init "$WORK/dstformer-small.mocap-u2.pt" "${GEN[@]}" "${REC[@]}" "${RT[@]:0:8}" \
    --set data.repeat=1,1,2,3,2,2,2,2 --set data.tilt_ramp_prob=0.5
$M weights export "$WORK/pretrain/small-gen-v33r/best.pt" --out "$WORK/dstformer-small.video-v33r.pt" --half \
    --overwrite --license "$LIC"
stage small-gen-v34r 23 --init "$WORK/dstformer-small.video-v33r.pt" "${GEN[@]}" "${REC[@]}" "${RT[@]:0:8}" \
    --set data.repeat=1,1,2,3,4,4,4,4 --set data.tilt_ramp_prob=0.5
$M weights export "$WORK/pretrain/small-gen-v34r/best.pt" --out "$WORK/dstformer-small.video-v34r.pt" --half \
    --overwrite --license "$LIC"
stage small-gen-v35r 24 --init "$WORK/dstformer-small.video-v34r.pt" "${GEN[@]}" "${REC[@]}" "${RT[@]:0:12}" \
    --set data.repeat=1,1,2,3,3,3,3,3,3,3 --set data.tilt_ramp_prob=0.5
$M weights export "$WORK/pretrain/small-gen-v35r/best.pt" --out "$WORK/dstformer-small.video-v35r.pt" --half \
    --overwrite --license "$LIC"
stage small-gen-v38l 25 --init "$WORK/dstformer-small.video-v35r.pt" "${GEN[@]}" "${REC[@]}" "${RT[@]:0:12}" \
    "${RT[@]:16:4}" --set data.repeat=1,1,2,3,3,3,3,3,3,3,3,3 --set data.tilt_ramp_prob=0.5 --lr 5e-5
$M weights export "$WORK/pretrain/small-gen-v38l/best.pt" --out "$WORK/dstformer-small.video-v38l.pt" --half \
    --overwrite --license "$LIC"
stage small-gen-v39 26 --init "$WORK/dstformer-small.video-v38l.pt" "${GEN[@]}" "${REC[@]}" "${RT[@]:0:8}" \
    "${RT[@]:12:8}" --set data.repeat=1,1,2,3,3,3,3,3,3,3,3,3 --set data.tilt_ramp_prob=0.5 --lr 5e-5
$M weights export "$WORK/pretrain/small-gen-v39/best.pt" --out "$WORK/dstformer-small.video-v39.pt" --half \
    --overwrite --license "$LIC"
stage small-gen-v40 27 --init "$WORK/dstformer-small.video-v39.pt" "${GEN[@]}" "${REC[@]}" "${RT[@]:0:12}" \
    "${RT[@]:16:4}" --set data.repeat=1,1,2,3,3,3,3,3,3,3,3,3 --set data.tilt_ramp_prob=0.5 --lr 5e-5
$M weights export "$WORK/pretrain/small-gen-v40/best.pt" --out "$WORK/dstformer-small.video-v40.pt" --half \
    --overwrite --license "$LIC"
# v42: one epoch from v40 with six new files, each six times: 10-13 from a random frame of each sequence, 14 and 15
# as well, from cameras 35-60 degrees above the body only.
for s in 10 11 12 13 14 15; do
    high=()
    [ "$s" -ge 14 ] && high=(--pitch 35,60)
    render "$s" 140 --start random "${high[@]}"
done
stage small-gen-v42 29 --init "$WORK/dstformer-small.video-v40.pt" "${GEN[@]}" "${REC[@]}" "${RT[@]:20:12}" \
    --set data.repeat=1,1,2,3,6,6,6,6,6,6 --set data.tilt_ramp_prob=0.5 --lr 5e-5
$M weights export "$WORK/pretrain/small-gen-v42/best.pt" --out "$WORK/dstformer-small.video-v42.pt" --half \
    --overwrite --license "$LIC"
# v43: one epoch from v42 with files 10-15 and two more from high cameras (70 sequences each), each six times.
for s in 16 17; do
    render "$s" 70 --start random --pitch 35,60
done
stage small-gen-v43 30 --init "$WORK/dstformer-small.video-v42.pt" "${GEN[@]}" "${REC[@]}" "${RT[@]:20:16}" \
    --set data.repeat=1,1,2,3,6,6,6,6,6,6,6,6 --set data.tilt_ramp_prob=0.5 --lr 5e-5
$M weights export "$WORK/pretrain/small-gen-v43/best.pt" --out "$WORK/dstformer-small.video-v43.pt" --half \
    --overwrite --license "$LIC"
# v44: one epoch from v43 with files 10-17 and two more (18 with cameras as drawn, 19 from high cameras), each six
# times.
for s in 18 19; do
    high=()
    [ "$s" -eq 19 ] && high=(--pitch 35,60)
    render "$s" 70 --start random "${high[@]}"
done
stage small-gen-v44 31 --init "$WORK/dstformer-small.video-v43.pt" "${GEN[@]}" "${REC[@]}" "${RT[@]:20:20}" \
    --set data.repeat=1,1,2,3,6,6,6,6,6,6,6,6,6,6 --set data.tilt_ramp_prob=0.5 --lr 5e-5
$M weights export "$WORK/pretrain/small-gen-v44/best.pt" --out weights/dstformer-small.video.pt --half \
    --overwrite --license "$LIC"
# dstformer-small.mocap, v50x: three epochs from v44. v48v: one with files 20-33 (70 sequences each, the odd seeds
# from high cameras), each seven times (v44's paired share); v49v: one from v48v with files 20-35, each six times;
# then v45's recipe from v49v: the mocap files and files 20-23 only, each six times. v48v and v49v were better than
# v44 on held-out video and worse on its validation samples, so v44 stays the video lifter. The files before v50x
# (v45, v46x: v45's recipe from v44) are in weights/history/dstformer-small.mocap.md.
for s in $(seq 20 35); do
    high=()
    [ $((s % 2)) -eq 1 ] && high=(--pitch 35,60)
    render "$s" 70 --start random "${high[@]}"
done
stage small-gen-v48v 39 --init weights/dstformer-small.video.pt "${GEN[@]}" "${REC[@]}" "${RT[@]:40:28}" \
    --set data.repeat=1,1,2,3,7,7,7,7,7,7,7,7,7,7,7,7,7,7 --set data.tilt_ramp_prob=0.5 --lr 5e-5
$M weights export "$WORK/pretrain/small-gen-v48v/best.pt" --out "$WORK/dstformer-small.video-v48v.pt" --half \
    --overwrite --license "$LIC"
stage small-gen-v49v 40 --init "$WORK/dstformer-small.video-v48v.pt" "${GEN[@]}" "${REC[@]}" "${RT[@]:40:32}" \
    --set data.repeat=1,1,2,3,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6 --set data.tilt_ramp_prob=0.5 --lr 5e-5
$M weights export "$WORK/pretrain/small-gen-v49v/best.pt" --out "$WORK/dstformer-small.video-v49v.pt" --half \
    --overwrite --license "$LIC"
stage small-gen-v50x 42 --init "$WORK/dstformer-small.video-v49v.pt" "${GEN[@]}" "${REC[@]}" "${RT[@]:40:8}" \
    --set data.repeat=1,1,2,3,6,6,6,6 --set data.tilt_ramp_prob=0.5 --lr 5e-5
$M weights export "$WORK/pretrain/small-gen-v50x/best.pt" --out weights/dstformer-small.mocap.pt --half \
    --overwrite --license "$LIC"
$M --seed 0 eval mocap "${DATA[@]}" --model weights/dstformer-small.mocap.pt --json "$WORK/eval_mocap.json"
$M --seed 0 eval generalisation --data "$WORK/h5d/hdm05.h5" --data "$WORK/h5d/reactidle.h5" \
    --model weights/dstformer-small.mocap.pt --json "$WORK/eval_generalisation.json"

# The action classifier on Bandai's content labels, on the frozen encoder of u2 (dstformer-small.mocap before v45:
# on v45's encoder the same recipe scores 52.1 % against 69.1 %, on v46x's 55.4 %, on v50x's 54.1 %; earlier
# files used v27t's, v13's on the rig-trunk file), and the text-aligned variant (on the v1 stage's encoder).
ACT="$WORK/finetune/bandai-content-u2"
[ -f "$ACT/model.pt" ] || $M --quiet --seed 0 finetune action --data "$WORK/h5d/bandai.h5" \
    --init "$WORK/dstformer-small.mocap-u2.pt" --freeze-backbone --clip-len 81 --batch 32 --epochs 1 \
    --set head.label_key=content_label --set head.max_persons=1 --set data.noise=true \
    --out-dir "$WORK/finetune" --name bandai-content-u2
$M weights export "$ACT/best.pt" --out weights/dstformer-small.bandai-action.pt --half --overwrite --license "$LIC"
TXT="$WORK/pretrain/bandai-small-text1"
[ -f "$TXT/model.pt" ] || $M -q --seed 0 pretrain --pretext action-text --data "$WORK/h5/bandai.h5" \
    --init "$WORK/dstformer-small.mocap-v1.pt" --clip-len 16 --batch 16 --epochs 1 --save-every 50 --lr 5e-4 \
    --precision fp32 --out-dir "$WORK/pretrain" --name bandai-small-text1 --set text.max_frames=64 \
    --set text.lift_weight=0 --set train.lr_head=1e-3 --set train.schedule=cosine --set train.warmup_steps=20 \
    --set train.min_lr_ratio=0.1 --set train.log_every=10
$M weights export "$TXT/best.pt" --out weights/dstformer-small.bandai-text.pt --half --overwrite --license "$LIC"
