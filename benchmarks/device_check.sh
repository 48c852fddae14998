#!/usr/bin/env bash
# Is training right on CUDA, and how fast? One script for a GPU machine, at most BUDGET_S (300) seconds.
#
#   1. CUDA sanity: GPU, capability, bfloat16, a matmul and a channels_last bf16 conv against the CPU.
#   2. The training, resume, generate and device tests on the GPU (pytest --device cuda).
#   3. talkface train on real shards (the speaker clip in MEDIA, cut into two clips), then resumed
#      through the switch to RAE_IA with the adversarial losses.
#   4. talkface generate on the GPU, from the run folder (its generator export).
#   5. benchmarks/bench_train.py at batch 32 and 4 in bf16, fp16 and fp32, without and with torch.compile.
#   It ends with one table of figures (also written to $OUT/device_check.md when OUT is set).
#
# Run from anywhere: benchmarks/device_check.sh. Settings (environment):
#   DEVICE=cuda     the device of every part; DEVICE=cpu QUICK=1 runs the script end to end on a CPU
#   QUICK=1         tiny sizes and a few tests: checks the script, measures nothing worth keeping
#   BUDGET_S=300    wall-clock budget: each part gets at most what is left; benchmark cells not
#                   measured in time are counted as such (BUDGET_S=1200 measures them all)
#   MEDIA=dir       real media (default: ../shared/media beside the source tree); without it the
#                   train and generate parts use synthetic shards and say so
#   OUT=dir         also write the table to $OUT/device_check.md
#   PYTHON=python   the interpreter (with its CUDA torch)
#   WHEELHOUSE=dir  install missing wheels offline: pip install --no-index --find-links dir ...
#   PIP_INSTALL=1   install missing wheels from the package index instead
#
# Needs a stock PyTorch GPU image (torch with CUDA, numpy) plus these wheels, which such an image
# lacks: click pyarrow tensorboard safetensors pytest av scipy opencv-python-headless librosa (and
# their dependencies). Without a network, carry them as a wheelhouse, made on a machine that has one:
#   pip download -d wheelhouse --only-binary=:all: --python-version 3.X click pyarrow tensorboard \
#       safetensors pytest av scipy opencv-python-headless librosa
# The source tree itself is used in place (PYTHONPATH), not installed. An image that already holds
# the rest (a 2026-11 H200 image did) needs only: av librosa audioread soundfile cffi pycparser soxr pooch
# platformdirs decorator (37 MB of wheels; pip install --no-index --no-deps --target DIR, DIR on PYTHONPATH).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
DEVICE=${DEVICE:-cuda}
QUICK=${QUICK:-0}
BUDGET_S=${BUDGET_S:-300}
MEDIA=${MEDIA:-$ROOT/../shared/media}
PY=${PYTHON:-python}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export CUBLAS_WORKSPACE_CONFIG=${CUBLAS_WORKSPACE_CONFIG:-:4096:8}  # deterministic cuBLAS for the resume tests
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
SUMMARY=()  # rows of the table: | part | result | figures | seconds |
FAILED=0

# run_part NAME CAP_S LOG COMMAND...: COMMAND under a time limit (CAP_S or what is left of the budget),
# output to LOG; sets PART_RESULT to ok, failed (exit N) or timeout, and PART_S to its seconds.
run_part() {
    local name=$1 cap=$2 log=$3
    shift 3
    local left=$((BUDGET_S - SECONDS))
    ((cap > left)) && cap=$left
    PART_S=0
    if ((cap < 5)); then
        PART_RESULT="not run (budget spent)"
        return
    fi
    echo "== $name (at most ${cap} s)" >&2
    local start=$SECONDS rc=0
    timeout --kill-after=10 "$cap" "$@" >"$log" 2>&1 || rc=$?
    PART_S=$((SECONDS - start))
    case $rc in
        0) PART_RESULT=ok ;;
        124 | 137) PART_RESULT="timeout after ${cap} s" ;;
        *) PART_RESULT="failed (exit $rc)" ;;
    esac
    if [[ $PART_RESULT != ok ]]; then
        tail -n 25 "$log" >&2
    fi
}

summarise() {  # summarise NAME FIGURES [fatal]: one table row; a failure counts, a budget skip does not
    SUMMARY+=("| $1 | $PART_RESULT | $2 | $PART_S |")
    if [[ $PART_RESULT == failed* || ($PART_RESULT == timeout* && ${3:-} == fatal) ]]; then
        FAILED=1
    fi
}

# 0. Wheels the stock image lacks.
missing=$("$PY" - <<'EOF'
import importlib.util
wheels = {"click": "click", "pyarrow": "pyarrow", "tensorboard": "tensorboard", "safetensors": "safetensors",
          "pytest": "pytest", "av": "av", "scipy": "scipy", "cv2": "opencv-python-headless", "librosa": "librosa"}
print(" ".join(wheel for module, wheel in wheels.items() if importlib.util.find_spec(module) is None))
EOF
)
if [[ -n $missing ]]; then
    if [[ -n ${WHEELHOUSE:-} ]]; then
        "$PY" -m pip install --no-index --find-links "$WHEELHOUSE" $missing
    elif [[ ${PIP_INSTALL:-0} == 1 ]]; then
        "$PY" -m pip install $missing
    else
        echo "device_check: missing wheels: $missing (set WHEELHOUSE=dir or PIP_INSTALL=1; see the top of $0)" >&2
        exit 2
    fi
fi

# 1. CUDA sanity (or the CPU's, for DEVICE=cpu): nothing else is worth running if it fails.
run_part "sanity" 60 "$WORK/sanity.log" "$PY" - "$DEVICE" <<'EOF'
import sys
import torch
from training.device import bf16_supported, resolve_device

dev = resolve_device(sys.argv[1])
torch.manual_seed(0)
a = torch.randn(512, 512)
assert torch.allclose((a.to(dev) @ a.to(dev)).cpu(), a @ a, rtol=1e-3, atol=1e-2), "matmul differs from the CPU's"
conv = torch.nn.Conv2d(64, 64, 5, padding=2)
x = torch.randn(8, 64, 56, 56)
want = conv(x)
with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16):
    got = conv.to(dev, memory_format=torch.channels_last)(x.to(dev, memory_format=torch.channels_last))
assert (got.float().cpu() - want).abs().max() < 0.05 * want.abs().max(), "bf16 channels_last conv is off"
if dev.type == "cuda":
    p = torch.cuda.get_device_properties(dev)
    print(f"figures: {p.name}, capability {p.major}.{p.minor}, {p.total_memory / 2**30:.0f} GiB, "
          f"{torch.cuda.device_count()} GPU(s), bf16 {'yes' if bf16_supported(dev) else 'no'}, "
          f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
else:
    print(f"figures: CPU, {torch.get_num_threads()} threads, torch {torch.__version__}")
EOF
summarise "sanity ($DEVICE)" "$(grep -m1 '^figures: ' "$WORK/sanity.log" | cut -c10- || true)" fatal
if [[ $PART_RESULT != ok ]]; then
    printf '%s\n' "${SUMMARY[@]}" >&2
    exit 2
fi

# 2. The tests on the device.
tests=(tests/test_device.py tests/test_progress.py tests/test_train.py tests/test_generate.py)
select="not on_the_warehouse"  # the warehouse test needs deltalake, not the GPU
if [[ $QUICK == 1 ]]; then
    tests=(tests/test_progress.py tests/test_generate.py)
    select="export_and_checkpoint"
fi
run_part "tests" 150 "$WORK/tests.log" "$PY" -m pytest -q -p no:cacheprovider --device "$DEVICE" \
    -m "not integration" -k "$select" "${tests[@]}"
summarise "tests on $DEVICE (training, resume, generate, device)" \
    "$(grep -E '^[0-9]+ [a-z]+.* in [0-9.]+s' "$WORK/tests.log" | tail -n1 || true)" fatal

# 3. talkface train on real shards, then resumed.
media_note="real shards: the WDA speaker clip of MEDIA in 2 clips"
[[ -f $MEDIA/WDA_AlexandriaOcasioCortez_000.mp4 ]] || media_note="synthetic shards: no real media at $MEDIA"
speech=$("$PY" - "$MEDIA" "$WORK" <<'EOF'
"""Shards of the real speaker clip: its frames resized to 112 px and its MFCC windows, as two clips of 100
frames, plus the clip's first frame as the face and its speech for generate (printed). Synthetic shards
and a tone when the clip is absent."""
import sys
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.audio import decode_audio
from pipeline.mfcc import mfcc_per_frame
from pipeline.video import probe_video, read_frames
from warehouse.features import write_shard
from warehouse.location import Location

media, work = Path(sys.argv[1]), Path(sys.argv[2])
clip = media / "WDA_AlexandriaOcasioCortez_000.mp4"
if clip.is_file():
    frames = np.stack([cv2.resize(f, (112, 112), interpolation=cv2.INTER_AREA)
                       for _, f in read_frames(probe_video(clip))])
    mfcc = mfcc_per_frame(decode_audio(clip), len(frames))
    rows = [{"clip_id": f"wda{i}", "n_frames": 100,
             "shard_uri": write_shard(Location.of(work), f"wda{i}", frames[100 * i:100 * i + 100],
                                      mfcc[100 * i:100 * i + 100])} for i in range(2)]
    pq.write_table(pa.Table.from_pylist(rows), work / "manifest.parquet")
    cv2.imwrite(str(work / "face.png"), cv2.cvtColor(frames[0], cv2.COLOR_RGB2BGR))
    print(clip)
else:
    sys.path.insert(0, "tests")
    from fixtures.training_shards import synthetic_clip, write_shards
    from scipy.io import wavfile

    write_shards(work, n_clips=2, n_frames=100)
    cv2.imwrite(str(work / "face.png"), cv2.cvtColor(synthetic_clip(1, seed=0)[0][0], cv2.COLOR_RGB2BGR))
    t = np.arange(3 * 16000) / 16000
    wavfile.write(work / "speech.wav", 16000, (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32))
    print(work / "speech.wav")
EOF
)
if [[ $QUICK == 1 ]]; then
    base=tiny steps=(3 3) batch=2 workers=0
else
    base=paper steps=(30 30) batch=${CLI_BATCH:-8} workers=4
fi
cat >"$WORK/real.toml" <<EOF
base = "$base"
[train]
batch_size = $batch
num_workers = $workers
log_every = 10
sample_every = 30
checkpoint_every = ${steps[0]}
compile = ${CLI_COMPILE:-false}  # the benchmark measures compilation; here the default path otherwise
[[train.schedule]]
name = "cae"
steps = ${steps[0]}
variant = "CAE"
perceptual = false
adversarial = false
[[train.schedule]]
name = "rae_gan"
steps = ${steps[1]}
variant = "RAE_IA"
perceptual = false
adversarial = true
EOF
train_figures() {  # train_figures LOG: first and last L1 of its log windows, where it resumed, last speed
    "$PY" - "$1" <<'EOF'
import re
import sys

text = open(sys.argv[1]).read()
windows = re.findall(r"step (\d+)/\d+ [\d.]+ steps/s ([\d,]+) frames/s .*? \| (\w+) .*?rec=([\d.]+)", text)
resumed = re.search(r"resumed from \S+ at step (\d+)", text)
if windows:
    (s0, _, _, r0), (s1, fps, stage, r1) = windows[0], windows[-1]
    print(f"L1 {float(r0):.3f} at step {s0} -> {float(r1):.3f} at step {s1} ({stage}), last window "
          f"{fps} frames/s" + (f"; resumed at step {resumed[1]}" if resumed else ""))
EOF
}
train_cli=("$PY" -m talkface_cli train --manifest "$WORK/manifest.parquet" --config "$WORK/real.toml"
           --out "$WORK/run" --device "$DEVICE")
run_part "train" 90 "$WORK/train.log" "${train_cli[@]}" --steps "${steps[0]}"
summarise "talkface train, CAE ($media_note)" "$(train_figures "$WORK/train.log")" fatal
run_part "resume" 90 "$WORK/resume.log" "${train_cli[@]}"
summarise "talkface train resumed: RAE_IA + adversarial" "$(train_figures "$WORK/resume.log")" fatal

# 4. talkface generate from the run folder (its newest generator export).
run_part "generate" 60 "$WORK/generate.log" "$PY" -m talkface_cli generate --image "$WORK/face.png" \
    --audio "$speech" --checkpoint "$WORK/run" --out "$WORK/generated.mp4" --device "$DEVICE"
export_mb=$(du -m "$WORK"/run/generator_*.safetensors 2>/dev/null | tail -n1 | cut -f1 || true)
ckpt_mb=$(du -m "$WORK"/run/ckpt_*.pt 2>/dev/null | tail -n1 | cut -f1 || true)
summarise "talkface generate on $DEVICE" \
    "$(grep -o 'wrote .* at 25 fps' "$WORK/generate.log" | sed "s|$WORK/||" || true); export ${export_mb:-?} MB, checkpoint ${ckpt_mb:-?} MB" fatal

# 5. Throughput: every cell of batch x precision x compile, uncompiled first, in what is left of the budget.
if [[ $QUICK == 1 ]]; then
    bench=(--batch-size 1 --seq-len 8 --precision fp32 bf16 --compile off --warmup 1 --steps 1 --workers 0)
    cells=2
else
    bench=(--batch-size 32 4 --precision bf16 fp16 fp32 --compile off on --warmup 3 --steps 6 --workers 4)
    cells=12
fi
run_part "benchmark" 100000 "$WORK/bench.log" "$PY" benchmarks/bench_train.py --device "$DEVICE" "${bench[@]}"
measured=$(grep -c '^| [a-z]* | [0-9]' "$WORK/bench.log" || true)
summarise "bench_train.py (paper sizes)" "$measured of $((2 * cells)) rows measured (below)"

{
    echo "## benchmarks/device_check.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), device $DEVICE, ${SECONDS} s"
    echo
    echo "| part | result | figures | seconds |"
    echo "|---|---|---|---|"
    printf '%s\n' "${SUMMARY[@]}"
    echo
    grep -E '^(# |\|)' "$WORK/bench.log" || true
} | tee "$WORK/table.md"
if [[ -n ${OUT:-} ]]; then
    mkdir -p "$OUT"
    cp "$WORK/table.md" "$OUT/device_check.md"
fi
exit $FAILED
