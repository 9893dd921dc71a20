#!/usr/bin/env bash
# The wheels that bench/gpu_train_step.py needs on a GPU machine that has PyTorch and JAX but neither
# Keras nor a package registry: Keras (the version installed here) and its needs that such a machine
# lacks (namex, optree), for CPython 3.12 on x86-64 Linux, into .whl/ (ignored by git, ~2 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
keras=$(python -c "import keras; print(keras.__version__)")
python -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl "keras==$keras" namex optree
ls -la .whl
