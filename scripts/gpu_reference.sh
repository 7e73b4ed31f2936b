#!/usr/bin/env bash
# The GPU reference run: the machine's selftest (the premises of every number), the gpu suite (all six models, fixed steps, bf16) and the full profile of every model
# in fp32 and bf16, with and without gradient checkpointing, all written under results/gpu/; then the real track's
# gpu-real suite (full-size models on copiste-dun-jour) into results/gpu-real/ when its data can be installed:
# from the network, or from a mirror folder (OCRBENCH_MIRROR, e.g. ../shared/data/real on a machine without one).
#
#   bash scripts/gpu_reference.sh                 # on a CUDA box (H100/H200): 1 seed, then the profile
#   SEEDS=3 bash scripts/gpu_reference.sh         # the 3-seed reference
#   DRY=1 bash scripts/gpu_reference.sh           # a dry run on any machine (CPU, tiny override, local/gpu-dry)
#   PRETRAIN=1 bash scripts/gpu_reference.sh      # also the gpu-pretrain suite into results/gpu-pretrain/
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS="${SEEDS:-1}"
if [[ "${DRY:-0}" == 1 ]]; then
  OUT=local/gpu-dry DEVICE=cpu PRECISION=fp32
  # the tiny variants of every family, the detector on small pages, a few steps: the script's path, not its numbers
  EXTRA=(--set train.steps=4 --set train.batch_size=4 --set data.train_size=32 --set data.val_size=8
         --set data.test_size=8 --set train.device=cpu --set train.precision=fp32 --set train.num_workers=0
         --set train.eval_every=2 --set lm.steps=5 --set lm.hidden=16
         --set "models=[line_cnn_tiny, resnet_ctc_tiny, {name: crnn_tiny, decoders: [greedy, beam, beam+lm]},
                attention_lm_tiny, cnn_transformer_tiny, {name: yolo_lines_tiny, data: {name: synth-pages,
                height: 128, train_size: 8, val_size: 2, test_size: 2, options: {}}, train: {batch_size: 2,
                steps: 2, eval_every: 0}}]")
  PROFILE=(--model line_cnn_small,crnn_small --precision fp32 --iters 2 --warmup 1)
  SELFTEST=(--threads 1)
  REAL_OUT=local/gpu-real-dry
  REAL_EXTRA=(--set train.steps=4 --set train.batch_size=4 --set train.device=cpu --set train.precision=fp32
              --set train.num_workers=0 --set train.eval_every=2 --set lm.steps=5 --set lm.hidden=16
              --set data.train_lines=16 --set "models=[line_cnn_tiny, {name: crnn_tiny, decoders: [greedy, beam+lm]}]")
  PRE_OUT=local/gpu-pretrain-dry
  PRE_EXTRA=("${REAL_EXTRA[@]}" --set data.train_size=32 --set data.val_size=8 --set data.test_size=8)
  rm -rf "$PRE_OUT"
  rm -rf "$OUT" "$REAL_OUT"
else
  OUT=results/gpu DEVICE=cuda PRECISION=fp32,bf16
  EXTRA=()
  PROFILE=(--model all --precision "$PRECISION")
  SELFTEST=()
  REAL_OUT=results/gpu-real
  REAL_EXTRA=()
  PRE_OUT=results/gpu-pretrain
  PRE_EXTRA=()
fi
mkdir -p "$OUT"
# a FAIL is reported, and the run goes on: its numbers are then read with the failed premise in mind
ocrbench selftest --device "$DEVICE" --out "$OUT/selftest.json" "${SELFTEST[@]}" | tee "$OUT/selftest.txt" || true
start=$(date +%s)
ocrbench run gpu --seeds "$SEEDS" --results "$OUT" --quiet "${EXTRA[@]}" | tee "$OUT/run.log"
suite_s=$(( $(date +%s) - start ))
ocrbench profile "${PROFILE[@]}" --device "$DEVICE" --grad-checkpointing both --results "$OUT" | tee "$OUT/profile.md"
ocrbench report --results "$OUT"
python - "$OUT" "$suite_s" "$SEEDS" <<'PY'
import json, platform, sys, torch
out, seconds, seeds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
info = {"suite_wall_seconds": seconds, "seeds": seeds, "torch": torch.__version__, "cuda": torch.version.cuda,
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor() or "cpu"}
open(f"{out}/run_info.json", "w").write(json.dumps(info, indent=1) + "\n")
print(json.dumps(info))
PY
# the real track: its data is downloaded on request (never packaged); without it the script says so and stops here
if ocrbench data download copiste-dun-jour && ocrbench data download stanford-memorials; then
  mkdir -p "$REAL_OUT"
  start=$(date +%s)
  ocrbench run gpu-real --seeds "$SEEDS" --results "$REAL_OUT" --quiet "${REAL_EXTRA[@]}" | tee "$REAL_OUT/run.log"
  echo "{\"suite_wall_seconds\": $(( $(date +%s) - start )), \"seeds\": $SEEDS}" > "$REAL_OUT/run_info.json"
  ocrbench report --results "$REAL_OUT"
  # synthetic pretraining (PRETRAIN=1): the full-size models on scanned-looking synthetic lines, scored on the
  # real collections' test documents (a model that never saw real handwriting)
  if [[ "${PRETRAIN:-0}" == 1 ]]; then
    mkdir -p "$PRE_OUT"
    ocrbench run gpu-pretrain --seeds "$SEEDS" --results "$PRE_OUT" --quiet "${PRE_EXTRA[@]}" \
      | tee "$PRE_OUT/run.log"
    ocrbench report --results "$PRE_OUT"
  fi
else
  echo "gpu-real skipped: copiste-dun-jour / stanford-memorials could not be installed (set OCRBENCH_MIRROR to a mirror folder)"
fi
