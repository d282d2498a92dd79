"""The pure-numpy evaluation imports neither torch nor an OpenMMLab package.

Each check runs in a fresh interpreter (this test process has imported
everything already) and looks at ``sys.modules`` afterwards.
"""

import json
import os
import os.path as osp
import subprocess
import sys
import textwrap

import pytest

from pcca_plugin.evaluation.functional import link_tubes
from pcca_plugin.utils.pickle_io import dump_pickle

from .cases import make_case

#: Packages the light paths must not load.
HEAVY = ('torch', 'mmengine', 'mmcv', 'mmdet', 'mmaction')
#: Prints the heavy top-level packages in sys.modules as JSON (appended to each script).
REPORT = f"""
import json as _json, sys as _sys
print(_json.dumps(sorted({{m.split('.')[0] for m in _sys.modules}} & {set(HEAVY)!r})))
"""


def run_script(code: str, cwd, repo_root) -> list:
    """Run ``code`` in a fresh interpreter; the heavy packages it left in sys.modules."""
    script = textwrap.dedent(code) + REPORT
    result = subprocess.run(
        [sys.executable, '-c', script],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=repo_root),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_import_evaluation_is_pure_numpy(tmp_path, repo_root):
    loaded = run_script(
        """
        import pcca_plugin.evaluation
        import pcca_plugin.evaluation.functional
        from pcca_plugin.evaluation import frame_ap, link_tubes, video_ap
        from pcca_plugin.utils.pickle_io import load_pickle
        import pcca_plugin
        assert not pcca_plugin._registered
        """,
        tmp_path,
        repo_root,
    )
    assert loaded == []


@pytest.fixture(scope='module')
def case_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp('light')
    gt, dets = make_case(3, num_videos=3)
    dump_pickle(gt, folder / 'gt.pkl')
    dump_pickle(dets, folder / 'frame_detections.pkl')
    dump_pickle(link_tubes(gt, dets, len_thr=3), folder / 'video_detections.pkl')
    return folder


@pytest.mark.parametrize('task', ['frameAP', 'link', 'videoAP', 'videoAP_error'])
def test_cli_is_pure_numpy(task, case_files, repo_root):
    cli = osp.join(repo_root, 'tools', 'eval_multisports.py')
    gt = str(case_files / 'gt.pkl')
    frame_dets = str(case_files / 'frame_detections.pkl')
    if task == 'link':
        argv = ['link', gt, frame_dets, '-o', str(case_files / 'linked.pkl')]
    elif task == 'frameAP':
        argv = ['frameAP', gt, frame_dets]
    else:
        argv = [task, gt, str(case_files / 'video_detections.pkl')]
    report = str(case_files / f'{task}.json')
    loaded = run_script(
        f"""
        import runpy, sys
        sys.argv = {[cli] + argv + ['--no-progress', '--json', report]!r}
        runpy.run_path({cli!r}, run_name='__main__')
        """,
        case_files,
        repo_root,
    )
    assert loaded == []
    with open(report) as f:
        assert json.load(f)['task'] == task  # the command really ran


def test_heavy_access_registers_everything(tmp_path, repo_root):
    """A light import, then a heavy subpackage: the components are registered on access."""
    loaded = run_script(
        """
        import pcca_plugin
        import pcca_plugin.evaluation
        assert not pcca_plugin._registered
        pcca_plugin.models  # first use of a heavy subpackage
        assert pcca_plugin._registered
        from mmaction.registry import METRICS
        from mmdet.registry import MODELS
        assert MODELS.get('PCCABBoxHead') is pcca_plugin.models.PCCABBoxHead
        assert METRICS.get('MultiSportsTubeMetric') is not None
        """,
        tmp_path,
        repo_root,
    )
    assert 'torch' in loaded


def test_importing_the_stack_later_registers_everything(tmp_path, repo_root):
    """``import pcca_plugin`` first, then torch/mmengine (as many scripts do): registered, and
    every compatibility fix applied, when that import statement has finished."""
    run_script(
        """
        import pcca_plugin
        assert not pcca_plugin._registered
        import builtins
        import pickle
        # While it waits, the watcher passes for the builtin: same name, pickled as it.
        assert builtins.__import__ is not pcca_plugin._watcher._original
        assert builtins.__import__.__name__ == '__import__'
        assert pickle.loads(pickle.dumps(builtins.__import__, protocol=4)) is builtins.__import__
        from mmengine.registry import MODELS as _  # the first heavy import statement
        assert pcca_plugin._registered
        assert builtins.__import__ is pcca_plugin._watcher._original  # the wrapper is gone
        assert 'fix_torch_weights_only_checkpoints' in pcca_plugin.compat.apply_all()
        from mmdet.registry import MODELS
        assert MODELS.get('ContextRoIExtractor') is not None
        from mmaction.registry import DATASETS
        assert DATASETS.get('MultiSportsDataset') is not None
        """,
        tmp_path,
        repo_root,
    )
