#!/usr/bin/env bash
# Issue 13's (and issue 12's) GPU measurements in one script, for one lent GPU session (≤ 9.5
# minutes in all).
#
#   On the device (repository root; the four official .gz files in .devdata/, carried):
#       OUT=$OUT bash benchmarks/device_run.sh
#       STEPS="env tests ablation best photo" FIRST_SEED=1 OUT=$OUT bash benchmarks/device_run.sh
#   CPU smoke test of this script (tiny settings, blocks the packages the device lacks):
#       SMOKE=1 OUT=/tmp/devrun PYTHON=.venv/bin/python bash benchmarks/device_run.sh
#
# Steps, run in the order STEPS names them (default: env cnn profile speedrun best eager), each
# under its own hard time limit (and never past BUDGET seconds in all), so a failing or slow step
# cannot take the others down:
#   env       torch / GPU / imports
#   tests     the CUDA-only tests (CUDA graphs against the eager step) and the recipe tests on GPU
#   cnn       the default `cnn` (on a GPU batch 1024, lr 0.5 × √8 = 1.41, CUDA graphs), 3 seeds:
#             training images/s and test accuracy; then without graphs and at batch 128 / lr 0.5
#             (the CPU batch), 1 seed each
#   profile   torch.profiler over 30 training steps of `cnn` at batch 1024 and of ResNet-20
#             width 64 at batch 512 (the `resnet-best` net)
#   speedrun  `speednet`: epochs chosen on a 10 % validation split of the training set, then
#             10 seeds on all 60k, scored on the test set (floor: ≥ 0.940 mean in ≤ 5 s)
#   ablation  the speedrun recipe at EPOCHS (6) with one ingredient off per row, 3 seeds each
#   best      `resnet-best` (ResNet-20 width 64, erasing, flip-shift views) on all 60k, seed
#             FIRST_SEED (0), its epochs fixed by a training-time budget (155 s) from the
#             warm-up's speed — never by the test set (floor: ≥ 0.960 within 3 min)
#   eager     the speedrun at its chosen epochs without CUDA graphs (5 seeds), the same-session
#             baseline of the graphs
#   photo     issue 12's photo-hardened ResNet-20 (`fmnist train resnet --epochs 25 --set
#             augment=translate,flip,photo`), widths 16 and 32 over seeds, all at once on the
#             one GPU (accuracy, not timing); the run folders come back as two tar files
# Results (at most 8 files): $OUT/summary.txt, steps.log (every step's output, headed by its
# name), speedrun.jsonl, speedrun.md and, from `photo`, photo_w16.tar and photo_w32.tar.
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder for the results}"
mkdir -p "$OUT"
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-auto}
BUDGET=${BUDGET:-570}
export PYTHONPATH=src FMNIST_DATA=${FMNIST_DATA:-.devdata}
WHEELS=${WHEELS:-.whl}  # pure-Python wheels the GPU machine lacks (skops, platformdirs, …)
if [[ ${SMOKE:-0} != 1 && -d $WHEELS ]]; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site "$WHEELS"/*.whl && export PYTHONPATH=/tmp/site:src
fi
export FMNIST_CACHE=${FMNIST_CACHE:-/tmp/fmnist-cache}
SR_EXTRA=""
if [[ ${SMOKE:-0} == 1 ]]; then
    # Tiny settings, and the packages the GPU machine lacks made unimportable (skops and
    # platformdirs, which `fmnist train` needs, travel there as wheels: see WHEELS).
    block=$(mktemp -d)
    for m in fastapi uvicorn optuna; do
        echo "raise ImportError('$m is not on the GPU machine')" > "$block/$m.py"
    done
    export PYTHONPATH="$block:src"
    [[ $DEVICE == auto ]] && DEVICE=cpu
    SR_EXTRA="--max-train 600 --max-test 200 --set width=8"
    BUDGET=${SMOKE_BUDGET:-400}
fi
START=$(date +%s)

step() {  # step NAME CAP COMMAND...: at most CAP seconds and never past the budget
    local name=$1 cap=$2 left
    shift 2
    left=$((BUDGET - ($(date +%s) - START)))
    ((left < cap)) && cap=$left
    if ((cap < 10)); then
        echo "$name: skipped, budget spent" >>"$OUT/summary.txt"
        return
    fi
    echo "=== $name ===" >>"$OUT/steps.log"
    STEP_CAP=$cap timeout -k 5 "$cap" bash -c "$*" >>"$OUT/steps.log" 2>&1
    echo "$name: exit $? after $(($(date +%s) - START)) s (cap $cap s)" >>"$OUT/summary.txt"
}

smoke() { [[ ${SMOKE:-0} == 1 ]] && echo "$1" || echo "$2"; }

sr() {  # benchmarks/speedrun.py with this script's device and output folder
    # shellcheck disable=SC2086  # SR_EXTRA is several words on purpose
    "$PYTHON" benchmarks/speedrun.py --device "$DEVICE" --out-dir "$OUT" $SR_EXTRA "$@"
}
step_env() {
    nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv || true
    "$PYTHON" -c 'import sys, torch; print(sys.version); print(torch.__version__, torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"); import fmnist.models.engine, fmnist.models.torch_estimator; from fmnist.data import load_fashion_mnist; print(load_fashion_mnist("test", allow_download=False).images.shape)'
}
step_tests() {
    "$PYTHON" -m pytest -q -p no:cacheprovider tests/test_recipes.py \
        -k "$(smoke graph 'graph or speed_recipe or resumes')"
}
step_cnn() {
    sr --recipe cnn --seeds "$(smoke 2 3)" &&
        sr --recipe cnn --seeds 1 --set cuda_graph=false &&
        sr --recipe cnn --seeds 1 --set batch_size=128 --set lr=0.5
}
step_profile() {  # where a training step's time goes, for the default cnn and resnet-best's net
    local args=(--steps "$(smoke 3 30)" --images "$(smoke 600 8192)")
    "$PYTHON" benchmarks/train_speed.py profile cnn --batch "$(smoke 64 1024)" "${args[@]}" \
        --params "{\"batch_size\": $(smoke 64 1024), \"lr\": 1.41}" &&
        "$PYTHON" benchmarks/train_speed.py profile resnet --batch "$(smoke 64 512)" "${args[@]}" \
            --params "{\"width\": $(smoke 8 64), \"batch_size\": $(smoke 64 512), \"lr\": 0.4}"
}
step_speedrun() {
    sr --recipe speedrun --seeds "$(smoke 2 10)" \
        --epochs-grid "$(smoke 1,2 6,8,10)" --target 0.945 --time-cap "$(smoke 60 70)"
}
step_ablation() {  # one ingredient off per row, at the epochs the speedrun step chose before
    sr --recipe speedrun --ablate all --seeds "$(smoke 1 3)" \
        --epochs "$(smoke 1 "${EPOCHS:-6}")"
}
step_best() {
    sr --recipe resnet-best --seeds 1 --first-seed "${FIRST_SEED:-0}" \
        --epochs "$(smoke 2 200)" --fit-budget "$(smoke 30 155)"
}
step_eager() {  # the speedrun at the epochs chosen above, without CUDA graphs
    local chosen
    chosen=$("$PYTHON" -c 'import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(next((r["epochs"] for r in reversed(rows)
            if r.get("phase") == "summary" and r.get("recipe") == "speedrun"), 10))' \
        "$OUT/speedrun.jsonl" 2>/dev/null || echo 10)
    sr --recipe speedrun --seeds "$(smoke 1 5)" \
        --epochs "$(smoke 1 "$chosen")" --set cuda_graph=false --time-cap "$(smoke 30 60)"
}
step_photo() {  # several photo-model trainings at once: the GPU is far from busy with one
    local runs=/tmp/photo-runs width seed
    local limit=$((STEP_CAP - 20))  # a training still running then is cut; the others come back
    rm -rf "$runs"
    for width in 16 32; do
        for seed in $(smoke "0" "${PHOTO_SEEDS:-0 1 2}"); do
            OMP_NUM_THREADS=2 timeout -k 5 "$limit" "$PYTHON" -m fmnist train resnet \
                --epochs "$(smoke 1 25)" --seed "$seed" --device "$DEVICE" \
                --set augment=translate,flip,photo --set width="$width" \
                $(smoke "--train-size 600" "") \
                --out "$runs/w$width-s$seed" >"$runs-w$width-s$seed.log" 2>&1 &
        done
    done
    wait
    tail -n 3 "$runs"-*.log
    for width in 16 32; do  # the weights and the run's record, not the resumable checkpoints
        (cd "$runs" && tar -cf "$OUT/photo_w$width.tar" --exclude=checkpoints w$width-s*)
    done
}

export -f sr smoke step_env step_tests step_cnn step_profile step_speedrun step_ablation \
    step_best step_eager step_photo
export PYTHON DEVICE OUT SMOKE SR_EXTRA
CAPS=(env 30 tests 60 cnn 90 profile 35 speedrun 110 ablation 140 best 200 eager 150 photo 240)
for name in ${STEPS:-env cnn profile speedrun best eager}; do
    cap=0
    for ((i = 0; i < ${#CAPS[@]}; i += 2)); do
        [[ ${CAPS[i]} == "$name" ]] && cap=${CAPS[i + 1]}
    done
    ((cap > 0)) || { echo "unknown step: $name" >>"$OUT/summary.txt"; continue; }
    step "$name" "$cap" "step_$name"
done
echo "total: $(($(date +%s) - START)) s" >>"$OUT/summary.txt"
cat "$OUT/summary.txt"
[[ -f $OUT/speedrun.md ]] && cat "$OUT/speedrun.md"
exit 0
