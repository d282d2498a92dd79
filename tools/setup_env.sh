#!/usr/bin/env bash
# Create (or update) the project's virtual environment with the pinned
# OpenMMLab stack.  Idempotent: every step checks what is already installed.
#
# Environment variables:
#   PCCA_VENV          where the venv lives                (default: .venv)
#   PCCA_PYTHON        interpreter used to create the venv (default: python3)
#   PCCA_SKIP_TORCH=1  keep the torch already importable in the venv (for a
#                      CUDA build you installed yourself); otherwise
#                      torch==2.13.0 (CPU) is installed.
#   PCCA_WHEEL_CACHE   where the built mmcv wheel is cached
#                      (default: ~/.cache/pcca_plugin/wheels)
#   MAX_JOBS           parallel compile jobs for the mmcv build (default: nproc)
set -euo pipefail

cd "$(dirname "$0")/.."
VENV=${PCCA_VENV:-.venv}
PY=${PCCA_PYTHON:-python3}
WHEELS=${PCCA_WHEEL_CACHE:-$HOME/.cache/pcca_plugin/wheels}
TORCH_VERSION=2.13.0
MMENGINE_VERSION=0.10.7
MMCV_VERSION=2.1.0
MMDET_VERSION=3.3.0
MMACTION_VERSION=1.2.0

log() { printf '[setup %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
start=$(date +%s)

if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtual environment $VENV"
    "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
PIP=("$VPY" -m pip install --disable-pip-version-check --no-input)

has() {  # has DIST VERSION -> true when DIST==VERSION is installed in the venv
    "$VPY" - "$1" "$2" <<'PYEOF'
import sys
from importlib import metadata
try:
    sys.exit(0 if metadata.version(sys.argv[1]) == sys.argv[2] else 1)
except metadata.PackageNotFoundError:
    sys.exit(1)
PYEOF
}

"${PIP[@]}" --quiet 'pip>=23' 'setuptools>=77,<81' wheel ninja

if [ "${PCCA_SKIP_TORCH:-0}" = "1" ]; then
    "$VPY" -c 'import torch' 2>/dev/null || {
        echo "PCCA_SKIP_TORCH=1 but torch is not importable in $VENV; install it first" >&2; exit 1; }
    log "PCCA_SKIP_TORCH=1: keeping torch $("$VPY" -c 'import torch; print(torch.__version__)')"
elif ! has torch "$TORCH_VERSION" && ! has torch "$TORCH_VERSION+cpu"; then
    log "installing torch==$TORCH_VERSION (CPU)"
    "${PIP[@]}" "torch==$TORCH_VERSION"
fi

if ! has mmengine "$MMENGINE_VERSION"; then
    log "installing mmengine==$MMENGINE_VERSION"
    "${PIP[@]}" "mmengine==$MMENGINE_VERSION"
fi

# mmcv: no wheel exists for this torch, so build it once with ops and cache it.
# The cache key holds the torch version, so a different torch rebuilds.
TORCH_TAG=$("$VPY" -c 'import torch; print(torch.__version__.replace("+", "_"))')
CACHE_DIR="$WHEELS/torch-$TORCH_TAG"
if ! has mmcv "$MMCV_VERSION" || ! "$VPY" -c 'import mmcv._ext' 2>/dev/null; then
    mkdir -p "$CACHE_DIR"
    wheel=$(ls "$CACHE_DIR"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n1 || true)
    if [ -z "$wheel" ]; then
        log "building mmcv==$MMCV_VERSION with ops from the sdist (about 10 min on 2 cores)"
        tmp=$(mktemp -d)
        MMCV_WITH_OPS=1 FORCE_CUDA=${FORCE_CUDA:-0} MAX_JOBS=${MAX_JOBS:-$(nproc)} \
            "$VPY" -m pip wheel --disable-pip-version-check --no-input --no-deps \
            --no-build-isolation --no-binary mmcv "mmcv==$MMCV_VERSION" -w "$tmp"
        mv "$tmp"/mmcv-*.whl "$CACHE_DIR"/
        rm -rf "$tmp"
        wheel=$(ls "$CACHE_DIR"/mmcv-"$MMCV_VERSION"-*.whl | head -n1)
    else
        log "reusing cached mmcv wheel $wheel"
    fi
    "${PIP[@]}" --force-reinstall --no-deps "$wheel"
    "${PIP[@]}" addict numpy packaging Pillow pyyaml yapf opencv-python
fi

for spec in "mmdet==$MMDET_VERSION" "mmaction2==$MMACTION_VERSION"; do
    name=${spec%%==*}; ver=${spec##*==}
    if ! has "$name" "$ver"; then
        log "installing $spec"
        "${PIP[@]}" "$spec"
    fi
done

log "installing pcca_plugin (editable, with the tests extra)"
"${PIP[@]}" --quiet -e '.[tests]'

"$VPY" -c 'import pcca_plugin; print("pcca_plugin", pcca_plugin.__version__, "imports fine")'
log "done in $(( $(date +%s) - start )) s; activate with: source $VENV/bin/activate"
