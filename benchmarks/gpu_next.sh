#!/usr/bin/env bash
# What the next lent GPU measures first, in one call of at most 10 minutes: the paper
# preset's experiments that have no 15-seed GPU records yet (the reference's experiments
# 2-10: without replay, the two other λ, the four learning rates; every experiment of the
# reference is compared with them), then the CUDA tests (tests/test_cuda.py: stacks on the
# GPU equal their runs alone, the ResNet's and the ViT's among them), then the ResNet's and
# the ViT's time per batch alone and stacked. Everything lands in $OUT as it is done; a call cut off keeps what it finished,
# and the same call again resumes the study where it stopped (stabgap run --out resumes).
#
# Here, before the call (MNIST and pytest travel in ignored folders, named in `carry`):
#     mkdir -p .mnist && cp /work/shared/data/mnist/*.gz .mnist/
#     pip install -q --target .pytest-lib pytest
# The call:
#     bash benchmarks/gpu_next.sh            (carry: .mnist, .pytest-lib; timeout_s 590)
# Afterwards the records go to docs/results/<gpu>-<date>/ (docs/results/README.md).
# A study cut off resumes in a second call: unpack its paper-2-10.tar.gz into an ignored
# folder, carry it too, and set RESUME to it. A dry run on a CPU, in a minute:
#     DEVICE=cpu SEEDS=2 STUDY_ARGS="--batches-per-task 2" SPEED_ARGS="--batch 4" \
#         OUT=/tmp/dry bash benchmarks/gpu_next.sh
set -u
DEVICE=${DEVICE:-cuda}
export PYTHONPATH=$PWD/src:$PWD/benchmarks:$PWD/.pytest-lib STABGAP_DATA=$PWD/.mnist STABGAP_TEST_DATA=$PWD/.mnist
OUT=${OUT:-/tmp/gpu-next}
mkdir -p "$OUT"
if [ -n "${RESUME:-}" ]; then cp -r "$RESUME" "$OUT/paper-2-10"; fi
nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1
python3 -c "import torch; print(torch.__version__, torch.version.cuda)" >>"$OUT/nvidia-smi.txt"

EXPERIMENTS=no-replay,nd-no-replay,nd-lambda-1e-7,nd-lambda-5e-5
EXPERIMENTS=$EXPERIMENTS,baseline-lr-1e-4,nd-lr-1e-4,baseline-lr-1e-2,nd-lr-1e-2
# About 8 minutes in fp32 on an H200; the time left goes to the next two steps.
timeout "${STUDY_S:-460}" python3 -m stabgap run --preset paper --experiments "$EXPERIMENTS" \
    --n-seeds "${SEEDS:-15}" --device "$DEVICE" --out "$OUT/paper-2-10" --quiet --no-plot \
    ${STUDY_ARGS:-} \
    >"$OUT/paper-2-10.log" 2>&1
echo "study exit status $?" >>"$OUT/paper-2-10.log"
# The records as one file: at most 8 files come back from a lent machine.
tar czf "$OUT/paper-2-10.tar.gz" -C "$OUT" paper-2-10 && rm -rf "$OUT/paper-2-10"

timeout "${TESTS_S:-45}" python3 -m pytest -p no:cacheprovider tests/test_cuda.py \
    >"$OUT/cuda-tests.txt" 2>&1
echo "pytest exit status $?" >>"$OUT/cuda-tests.txt"

timeout "${SPEED_S:-70}" python3 benchmarks/model_speed.py --device "$DEVICE" --copies 1,4,16,64 \
    --skip-run ${SPEED_ARGS:-} >"$OUT/model-speed.md" 2>&1
echo "model_speed exit status $?" >>"$OUT/model-speed.md"
