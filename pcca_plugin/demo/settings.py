"""What the demo runs: its configs, stages, seeds, data sizes and epochs, and its errors.

Everything here is a plain value; :mod:`pcca_plugin.demo.pipeline` runs it.
"""

import os.path as osp
from dataclasses import dataclass, field
from typing import Dict

from pcca_plugin.utils.checkout import repo_path

#: Configs of the demo's runs (relative to the repository root): the backbone's
#: pretraining and the three models.
CONFIGS = {
    'clip_classifier': (
        'configs/pcca/clip-classifier_slowfast-tiny_1xb8-8x1x1-5e_toy-sports-clips-rgb.py'
    ),
    'linear': 'configs/pcca/linear_slowfast-tiny_1xb8-8x1x1-5e_toy-sports-rgb.py',
    'pcca': 'configs/pcca/pcca_slowfast-tiny_1xb8-8x1x1-5e_toy-sports-rgb.py',
    'decoupled': 'configs/pcca/pcca-decoupled_slowfast-tiny_1xb8-8x1x1-2e-cb_toy-sports-rgb.py',
}
#: Rows of the results table, with the names the paper's Table 1 uses:
#: ``(model, head name, decoupled)``.
MODEL_ROWS = (('linear', 'Linear', False), ('pcca', 'PCCA', False), ('decoupled', 'PCCA', True))
#: The dataset path written in the toy-sports configs; the demo rebases it.
CONFIG_DATA_ROOT = 'data/toy_sports'
#: Where the report keeps the 2021 challenge server's figures (the metric's prefix).
SERVER2021_PREFIX = 'server2021'
#: Figures of the paper's Table 1 (metric key, column title): today's protocol, then the
#: 2021 challenge server's, which scored the paper's table (docs/protocol.md).
TABLE_COLUMNS = (
    ('frame_mAP@0.5', 'F@0.5'),
    ('video_mAP@0.2', 'V@0.2'),
    ('video_mAP@0.5', 'V@0.5'),
    ('video_mAP@0.1:0.9', 'V@0.1:0.9'),
    (f'{SERVER2021_PREFIX}/F@0.5', 'F@0.5 (2021 server)'),
    (f'{SERVER2021_PREFIX}/V@0.2', 'V@0.2 (2021 server)'),
    (f'{SERVER2021_PREFIX}/V@0.5', 'V@0.5 (2021 server)'),
    (f'{SERVER2021_PREFIX}/V@0.1:0.9', 'V@0.1:0.9 (2021 server)'),
)
#: Where ``make demo`` writes (inside the checkout).
DEFAULT_WORK_DIR = repo_path('work_dirs', 'demo')
#: Free disk space the demo needs before it starts (data, checkpoints, videos; three
#: seeds took 184 MiB with the pretraining videos and checkpoints).
REQUIRED_FREE_MB = 500
STATE_FILE = 'demo_state.json'
#: The demo's stages in the order they run.
STAGES = (
    'data',
    'pretrain',
    'train_linear',
    'train_pcca',
    'train_decoupled',
    'test_linear',
    'test_pcca',
    'test_decoupled',
    'report',
)
#: The demo's toy-sports data (:mod:`pcca_plugin.datasets.toy_sports`): 40 training videos
#: with 4 short tubes (4-6 boxes) per tail class, about 15x fewer boxes than a head
#: class; 30 held-out videos with 6 full-length tubes per tail class, so that tail AP
#: is measured on about 90 boxes per class.
FULL_DATA_SIZES = dict(
    num_train_videos=40,
    num_val_videos=30,
    tail_tubes=dict(train=4, val=6),
    tail_tube_len=dict(train=(4, 6), val=(14, 18)),
)
#: Seeds of the demo: each one generates its own data and trains its own models; the
#: report gives mean and std over them (one seed's ranking of the heads is noisy).
FULL_SEEDS = (0, 1, 2)
QUICK_SEEDS = (0, 1)
#: Threads of every seed's training and testing, whether it runs alone or beside other
#: seeds: multi-threaded CPU kernels sum in an order that depends on the thread count,
#: and a seed's figures must not (measured: the same seed with 2 threads instead of 1
#: moved PCCA's F@0.5 by 4.8 points; with the same count, reruns are identical).
THREADS_PER_SEED = 1
#: The pretraining videos of seed ``S`` are generated with seed ``S + PRETRAIN_SEED_OFFSET``:
#: other videos than the detection data's, like Kinetics and MultiSports.
PRETRAIN_SEED_OFFSET = 1000
#: ``--quick``: one tail tube per split, so that 4 held-out videos still hold every class.
QUICK_DATA_SIZES = dict(num_train_videos=8, num_val_videos=4, tail_tubes=dict(train=1, val=1))


@dataclass
class DemoSettings:
    """How much data and training the demo uses (full run or ``--quick``)."""

    data_sizes: Dict = field(default_factory=lambda: dict(FULL_DATA_SIZES))
    phase1_epochs: int = 5
    phase2_epochs: int = 2
    #: mmengine's log lines (losses, lr) every this many iterations; the progress bar
    #: of every stage shows the rest.
    log_interval: int = 50

    @classmethod
    def full(cls) -> 'DemoSettings':
        return cls()

    @classmethod
    def quick(cls) -> 'DemoSettings':
        return cls(data_sizes=dict(QUICK_DATA_SIZES), phase1_epochs=2, phase2_epochs=1)


class DemoError(RuntimeError):
    """A problem the user has to fix before the demo can run."""


class ClaimNotReproduced(DemoError):
    """The full demo ran, but one of the paper's claims failed on its figures."""


def seed_work_dir(work_dir: str, seed: int) -> str:
    """Where one seed's data, checkpoints, detections and report go."""
    return osp.join(work_dir, f'seed_{seed}')


def config_path(model: str) -> str:
    """The absolute path of the config of ``model`` (a key of :data:`CONFIGS`)."""
    return repo_path(CONFIGS[model])
