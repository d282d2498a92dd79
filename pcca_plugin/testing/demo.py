"""Finished demo seeds constructed for the tests (the full demo takes 12 minutes).

A constructed seed (:func:`write_seed`) holds what the demo's stages leave
behind: ``results.json`` with chosen figures, the annotated video files, one
``scalars.json`` per training run and, when asked, a state file where every
stage is done. Everything after them (the summary over seeds, the claim
checks, the command line and its exit status) is the demo's own code.
"""

import json
import os
from typing import Dict, Optional

from pcca_plugin.demo.pipeline import StageState
from pcca_plugin.demo.report import group_means, report_paths
from pcca_plugin.demo.settings import (
    MODEL_ROWS,
    STAGES,
    STATE_FILE,
    TABLE_COLUMNS,
    DemoSettings,
    seed_work_dir,
)

#: The demo's models, in the order of its table.
MODELS = [model for model, _, _ in MODEL_ROWS]
#: Class groups of the constructed seeds (a subset of toy-sports' classes).
CLASS_GROUPS = {
    'motion': ['run left', 'jump'],
    'context': ['carry red ball', 'jump with red ball'],
    'tail': ['jump with red ball'],
}
#: A seed on which every claim holds: PCCA > linear (F@0.5), its gain larger on the
#: context classes (+30 / +35) than on motion (+5), phase 2 raising the tail class (+5).
PASSING_SEED = dict(
    frame_map=dict(linear=50.0, pcca=70.0, decoupled=72.0),
    per_class=dict(
        linear={'run left': 80.0, 'jump': 80.0, 'carry red ball': 40.0, 'jump with red ball': 20.0},
        pcca={'run left': 85.0, 'jump': 85.0, 'carry red ball': 70.0, 'jump with red ball': 55.0},
        decoupled={
            'run left': 85.0,
            'jump': 85.0,
            'carry red ball': 70.0,
            'jump with red ball': 60.0,
        },
    ),
)
#: The constructed training runs: one scalars.json line per iteration, this many.
CONSTRUCTED_ITERATIONS = (1, 2)


def seed_report(frame_map: Dict[str, float], per_class: Dict[str, Dict[str, float]]) -> Dict:
    """A seed's results.json content, its group means computed by the report's own code.

    Args:
        frame_map: model -> frame-mAP@0.5 (the other Table-1 columns are 0).
        per_class: model -> class name -> frame AP.
    """
    table = {
        model: {
            key: (frame_map[model] if i == 0 else 0.0) for i, (key, _) in enumerate(TABLE_COLUMNS)
        }
        for model in MODELS
    }
    return dict(
        table=table,
        per_class_frame_ap=per_class,
        group_frame_ap={m: group_means(per_class[m], CLASS_GROUPS) for m in MODELS},
        class_groups=CLASS_GROUPS,
        annotated_video='video_0',
    )


def failing(claim: str) -> Dict:
    """:data:`PASSING_SEED` changed so that exactly ``claim`` fails (a name of ``CLAIMS``)."""
    seed = json.loads(json.dumps(PASSING_SEED))
    if claim == 'pcca_beats_linear':
        seed['frame_map']['linear'] = 75.0
    elif claim == 'gain_larger_on_context':
        seed['per_class']['pcca']['run left'] = 100.0  # motion gain +20 > context gain +10
        seed['per_class']['pcca']['jump'] = 100.0
        seed['per_class']['pcca']['carry red ball'] = 45.0
        seed['per_class']['pcca']['jump with red ball'] = 35.0
        seed['per_class']['decoupled'] = dict(
            seed['per_class']['pcca'], **{'jump with red ball': 40.0}
        )
    elif claim == 'phase2_raises_tail':
        seed['per_class']['decoupled']['jump with red ball'] = 50.0
    return seed


def write_seed(
    work_dir: str, seed: int, figures: Dict, settings: Optional[DemoSettings] = None
) -> str:
    """A finished seed under ``work_dir``; returns its ``results.json``.

    Args:
        work_dir: the demo's work dir (the seed goes to its ``seed_<S>/``).
        seed: the seed.
        figures: :func:`seed_report`'s arguments (e.g. :data:`PASSING_SEED`).
        settings: also write a state file where every stage finished with these
            settings (the demo then reuses the seed instead of running it).
    """
    seed_dir = seed_work_dir(str(work_dir), seed)
    os.makedirs(seed_dir, exist_ok=True)
    paths = report_paths(seed_dir)
    with open(paths['results_json'], 'w') as f:
        json.dump(seed_report(**figures), f)
    for key in ('annotated_mp4', 'annotated_gif'):
        with open(paths[key], 'wb') as f:
            f.write(b'video bytes')
    for model in MODELS:
        vis_data = os.path.join(seed_dir, model, '20260101_000000', 'vis_data')
        os.makedirs(vis_data, exist_ok=True)
        with open(os.path.join(vis_data, 'scalars.json'), 'w') as f:
            for iteration in CONSTRUCTED_ITERATIONS:
                line = dict(lr=0.1, loss=1.0 / iteration, epoch=iteration, iter=iteration)
                f.write(json.dumps(dict(line, step=iteration)) + '\n')
    if settings is not None:
        state = StageState(os.path.join(seed_dir, STATE_FILE), settings, seed)
        outputs = dict(backbone='backbone.pth', checkpoint='epoch_1.pth', data_root='data')
        for stage in STAGES[:-1]:
            state.finish(stage, outputs, 0.0)
        state.finish('report', paths, 0.0)
    return paths['results_json']
