#!/usr/bin/env bash
# Train on a Slurm cluster: one task per GPU; tools/train.py --launcher slurm reads each
# task's rank from srun's variables (SLURM_PROCID, SLURM_NTASKS, SLURM_NODELIST, SLURM_LOCALID).
#   [GPUS=8 GPUS_PER_NODE=8 CPUS_PER_TASK=5 SRUN_ARGS=...] \
#   bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [WORK_DIR] [tools/train.py options]
# CPU partition: GRES= (empty) drops --gres; GPUS is then the number of tasks and the
# tasks train with gloo. MASTER_PORT (default 29500) is the rendezvous port.
set -euo pipefail
if [ "$#" -lt 3 ]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG [WORK_DIR] [train.py options]" >&2
    exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
shift 3
WORK_DIR_ARGS=()
if [ "$#" -gt 0 ] && [[ "$1" != -* ]]; then
    WORK_DIR_ARGS=(--work-dir "$1")
    shift
fi
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
GRES=${GRES-gpu:$GPUS_PER_NODE}
GRES_ARGS=()
if [ -n "$GRES" ]; then
    GRES_ARGS=(--gres="$GRES")
fi
SRUN_ARGS=${SRUN_ARGS:-""}
PYTHON=${PYTHON:-python}
TOOLS_DIR=$(cd "$(dirname "$0")" && pwd)

# shellcheck disable=SC2086  # SRUN_ARGS is a list of words on purpose
srun -p "$PARTITION" --job-name="$JOB_NAME" \
    "${GRES_ARGS[@]}" --ntasks="$GPUS" --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 ${SRUN_ARGS} \
    "$PYTHON" -u "$TOOLS_DIR/train.py" "$CONFIG" --launcher slurm "${WORK_DIR_ARGS[@]}" "$@"
