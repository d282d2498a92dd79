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
#   PCCA_CONSTRAINTS   pip constraints applied to every install
#                      (default: requirements/constraints.txt)
#   FORCE_CUDA=1       build mmcv's CUDA ops (needs a CUDA toolkit and a CUDA torch)
#   MAX_JOBS           parallel compile jobs for the mmcv build (default: nproc)
#   PCCA_MMCV_BUILD_CMD  tests only: a command run as `bash -c CMD _ OUT_DIR` instead of
#                      the mmcv build; it must write one mmcv-<version>-*.whl into OUT_DIR.
#
# The mmcv wheel cache. A wheel is compiled against one torch, one CUDA (or none)
# and one Python, with or without CUDA ops, so the cache folder is keyed by all four
# (wheel_cache_key): a CPU-only wheel is never reused for a CUDA build. The wheel's
# sha256 is recorded next to it when it is built (<wheel>.sha256) and checked before
# it is installed; a wheel that does not match its record, or has none, is rebuilt.
#
# `source tools/setup_env.sh` defines the functions without running anything (the
# tests call them).

TORCH_VERSION=2.13.0
MMENGINE_VERSION=0.10.7
MMCV_VERSION=2.1.0
MMDET_VERSION=3.3.0
MMACTION_VERSION=1.2.0
# numpy of the second, bare environment $VENV/numpy1 (the 2021 challenge server ran numpy 1.x)
NUMPY1_VERSION=1.26.4

log() { printf '[setup %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

has() {  # has DIST VERSION -> true when DIST==VERSION is installed in the venv ($VPY)
    "$VPY" - "$1" "$2" <<'PYEOF'
import sys
from importlib import metadata
try:
    sys.exit(0 if metadata.version(sys.argv[1]) == sys.argv[2] else 1)
except metadata.PackageNotFoundError:
    sys.exit(1)
PYEOF
}

# wheel_cache_key TORCH_VERSION CUDA_VERSION FORCE_CUDA PYTHON_TAG -> the cache folder name.
# CUDA_VERSION is torch.version.cuda, or "cpu" for a CPU-only torch; FORCE_CUDA 0 or 1.
wheel_cache_key() {
    local torch_version=$1 cuda=$2 force_cuda=$3 python_tag=$4
    printf 'torch-%s_cuda-%s_force-cuda-%s_%s\n' \
        "${torch_version//+/_}" "$cuda" "$force_cuda" "$python_tag"
}

# torch_build_info -> "TORCH_VERSION CUDA_VERSION PYTHON_TAG" of the venv's torch ($VPY).
torch_build_info() {
    "$VPY" -c 'import sys, torch; print(torch.__version__, torch.version.cuda or "cpu", "cp%d%d" % sys.version_info[:2])'
}

# sha256_of FILE -> the hex sha256 of FILE (Python's hashlib: no sha256sum needed).
sha256_of() {
    "$VPY" -c 'import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
print(h.hexdigest())' "$1"
}

# record_sha256 WHEEL: write WHEEL.sha256 ("<hex>  <file name>", the sha256sum format).
record_sha256() {
    printf '%s  %s\n' "$(sha256_of "$1")" "$(basename "$1")" > "$1.sha256.tmp"
    mv "$1.sha256.tmp" "$1.sha256"
}

# verify_sha256 WHEEL: true when WHEEL matches its record; otherwise false, with the reason.
verify_sha256() {
    local wheel=$1 expected actual
    if [ ! -f "$wheel.sha256" ]; then
        log "$wheel: no sha256 record ($wheel.sha256)"
        return 1
    fi
    expected=$(cut -d' ' -f1 < "$wheel.sha256")
    actual=$(sha256_of "$wheel")
    if [ "$expected" != "$actual" ]; then
        log "$wheel: sha256 mismatch (recorded $expected, found $actual)"
        return 1
    fi
}

# build_mmcv_wheel CACHE_DIR: build mmcv with ops into CACHE_DIR and record its sha256.
build_mmcv_wheel() {
    local cache_dir=$1 tmp built
    tmp=$(mktemp -d)
    if [ -n "${PCCA_MMCV_BUILD_CMD:-}" ]; then
        bash -c "$PCCA_MMCV_BUILD_CMD" _ "$tmp" || { rm -rf "$tmp"; return 1; }
    else
        MMCV_WITH_OPS=1 FORCE_CUDA=${FORCE_CUDA:-0} MAX_JOBS=${MAX_JOBS:-$(nproc)} \
            "$VPY" -m pip wheel --disable-pip-version-check --no-input --no-deps \
            --no-build-isolation --no-binary mmcv "mmcv==$MMCV_VERSION" -w "$tmp" \
            || { rm -rf "$tmp"; return 1; }
    fi
    built=$(ls "$tmp"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n1 || true)
    if [ -z "$built" ]; then
        rm -rf "$tmp"
        echo "the mmcv build wrote no mmcv-$MMCV_VERSION-*.whl" >&2
        return 1
    fi
    mkdir -p "$cache_dir" && mv "$built" "$cache_dir"/ || { rm -rf "$tmp"; return 1; }
    rm -rf "$tmp"
    record_sha256 "$cache_dir/$(basename "$built")"
}

# mmcv_wheel CACHE_DIR -> path of a verified mmcv wheel in CACHE_DIR, built when there is
# none or when the cached one does not match its recorded sha256 (it is then removed).
mmcv_wheel() {
    local cache_dir=$1 wheel
    wheel=$(ls "$cache_dir"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n1 || true)
    if [ -n "$wheel" ] && verify_sha256 "$wheel" >&2; then
        log "reusing cached mmcv wheel $wheel (sha256 verified)" >&2
    else
        if [ -n "$wheel" ]; then
            log "removing $wheel and rebuilding mmcv==$MMCV_VERSION" >&2
            rm -f "$wheel" "$wheel.sha256"
        fi
        log "building mmcv==$MMCV_VERSION with ops from the sdist (about 10 min on 2 cores) into $cache_dir" >&2
        build_mmcv_wheel "$cache_dir" >&2 || return 1
        wheel=$(ls "$cache_dir"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n1 || true)
        [ -n "$wheel" ] && verify_sha256 "$wheel" >&2 || return 1
    fi
    printf '%s\n' "$wheel"
}

main() {
    set -euo pipefail
    shopt -s inherit_errexit
    cd "$(dirname "${BASH_SOURCE[0]}")/.."
    VENV=${PCCA_VENV:-.venv}
    local python=${PCCA_PYTHON:-python3}
    local wheels=${PCCA_WHEEL_CACHE:-$HOME/.cache/pcca_plugin/wheels}
    local constraints=${PCCA_CONSTRAINTS:-requirements/constraints.txt}
    local start
    start=$(date +%s)
    if [ ! -f "$constraints" ]; then
        echo "$constraints: constraints file not found (PCCA_CONSTRAINTS)" >&2
        exit 1
    fi

    if [ ! -x "$VENV/bin/python" ]; then
        log "creating virtual environment $VENV"
        "$python" -m venv "$VENV"
    fi
    VPY="$VENV/bin/python"
    # Every install is held to the pinned versions of the constraints file.
    PIP=("$VPY" -m pip install --disable-pip-version-check --no-input -c "$constraints")

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
    if ! has mmcv "$MMCV_VERSION" || ! "$VPY" -c 'import mmcv._ext' 2>/dev/null; then
        local info key wheel
        read -r -a info <<< "$(torch_build_info)"
        key=$(wheel_cache_key "${info[0]}" "${info[1]}" "${FORCE_CUDA:-0}" "${info[2]}")
        wheel=$(mmcv_wheel "$wheels/$key")
        "${PIP[@]}" --force-reinstall --no-deps "$wheel"
        "${PIP[@]}" addict numpy packaging Pillow pyyaml yapf opencv-python
    fi

    for spec in "mmdet==$MMDET_VERSION" "mmaction2==$MMACTION_VERSION"; do
        local name=${spec%%==*} ver=${spec##*==}
        if ! has "$name" "$ver"; then
            log "installing $spec"
            "${PIP[@]}" "$spec"
        fi
    done

    log "installing pcca_plugin (editable, with the tests and deploy extras)"
    "${PIP[@]}" --quiet -e '.[tests,deploy]'

    # $VENV/numpy1: numpy 1.x and nothing else. The tests read the submission archive there and
    # run the 2021 challenge scorer's reference under it (pcca_plugin.testing.numpy1_python).
    local numpy1=$VENV/numpy1
    if ! "$numpy1/bin/python" -c "import numpy, sys; sys.exit(numpy.__version__ != '$NUMPY1_VERSION')" 2>/dev/null; then
        log "creating $numpy1 with numpy==$NUMPY1_VERSION"
        "$python" -m venv "$numpy1"
        "$numpy1/bin/python" -m pip install --disable-pip-version-check --no-input --quiet "numpy==$NUMPY1_VERSION"
    fi

    "$VPY" -c 'import pcca_plugin; print("pcca_plugin", pcca_plugin.__version__, "imports fine")'
    log "done in $(( $(date +%s) - start )) s; activate with: source $VENV/bin/activate"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    main "$@"
fi
