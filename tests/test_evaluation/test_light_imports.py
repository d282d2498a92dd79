"""The import rules of ``pcca_plugin/__init__.py``, checked in fresh interpreters.

1. ``pcca_plugin.evaluation`` and ``pcca_plugin.utils`` import numpy only: the
   evaluation command line starts in a fraction of a second (``--help`` under 1 s).
2. Every other subpackage imports torch and the OpenMMLab stack and registers its own
   components.
3. ``import pcca_plugin`` registers them all when mmengine is already imported
   (``custom_imports``); otherwise scripts call ``pcca_plugin.register_all_modules()``.

Rule 1 is checked here; rules 2 and 3 in ``tests/test_registration.py``.

Each check runs in a fresh interpreter (this test process has imported
everything already) and looks at ``sys.modules`` afterwards.
"""

import json
import subprocess
import sys
import textwrap
import time

import pytest

from pcca_plugin.evaluation.functional import link_tubes
from pcca_plugin.testing import repo_path, subprocess_env
from pcca_plugin.testing.evaluation import make_case
from pcca_plugin.utils.pickle_io import dump_pickle

#: Packages the light paths must not load.
HEAVY = ('torch', 'mmengine', 'mmcv', 'mmdet', 'mmaction')
#: Prints the heavy top-level packages in sys.modules as JSON (appended to each script).
REPORT = f"""
import json as _json, sys as _sys
print(_json.dumps(sorted({{m.split('.')[0] for m in _sys.modules}} & {set(HEAVY)!r})))
"""
#: ``tools/eval_multisports.py --help`` must answer within this, start-up and imports included.
HELP_SECONDS = 1.0
#: Runs of ``--help``; the fastest counts (the test machine is shared with other jobs).
HELP_RUNS = 3


def run_script(code: str, cwd) -> list:
    """Run ``code`` in a fresh interpreter; the heavy packages it left in sys.modules."""
    script = textwrap.dedent(code) + REPORT
    result = subprocess.run(
        [sys.executable, '-c', script],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=subprocess_env(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_import_evaluation_is_pure_numpy(tmp_path):
    loaded = run_script(
        """
        import pcca_plugin.evaluation
        import pcca_plugin.evaluation.functional
        import pcca_plugin.evaluation.tasks
        from pcca_plugin.evaluation import benchmark, frame_ap, link_tubes, video_ap
        from pcca_plugin.evaluation.functional.ensemble import ensemble_files
        from pcca_plugin.utils.pickle_io import load_pickle
        from pcca_plugin.utils.cli import run_cli
        import pcca_plugin
        assert not pcca_plugin.all_modules_registered()
        """,
        tmp_path,
    )
    assert loaded == []


@pytest.fixture(scope='module')
def case_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp('light')
    gt, dets = make_case(3, num_videos=3)
    dump_pickle(gt, folder / 'gt.pkl')
    dump_pickle(dets, folder / 'frame_detections.pkl')
    dump_pickle(dets, folder / 'copy_frame_detections.pkl')
    dump_pickle(link_tubes(gt, dets, len_thr=3), folder / 'video_detections.pkl')
    return folder


@pytest.mark.parametrize('task', ['frameAP', 'link', 'videoAP', 'videoAP_error', 'ensemble'])
def test_cli_is_pure_numpy(task, case_files):
    cli = repo_path('tools', 'eval_multisports.py')
    gt = str(case_files / 'gt.pkl')
    frame_dets = str(case_files / 'frame_detections.pkl')
    report = str(case_files / f'{task}.json')
    if task == 'ensemble':
        cli = repo_path('tools', 'ensemble.py')
        argv = [frame_dets, str(case_files / 'copy_frame_detections.pkl'), '--gt', gt]
        argv += ['-o', report]  # the averaged rows; not JSON, but written last
    elif task == 'link':
        argv = ['link', gt, frame_dets, '-o', str(case_files / 'linked.pkl')]
    elif task == 'frameAP':
        argv = ['frameAP', gt, frame_dets]
    else:
        argv = [task, gt, str(case_files / 'video_detections.pkl')]
    if task != 'ensemble':
        argv += ['--no-progress', '--json', report]
    loaded = run_script(
        f"""
        import runpy, sys
        sys.argv = {[cli] + argv!r}
        runpy.run_path({cli!r}, run_name='__main__')
        """,
        case_files,
    )
    assert loaded == []
    if task != 'ensemble':
        with open(report) as f:
            assert json.load(f)['task'] == task  # the command really ran
    else:
        assert (case_files / f'{task}.json').stat().st_size > 0


def test_help_answers_within_a_second_and_imports_numpy_only(tmp_path):
    """``--help`` as a user types it: a fresh interpreter, the fastest of a few runs."""
    command = [sys.executable, repo_path('tools', 'eval_multisports.py'), '--help']
    seconds = []
    for _ in range(HELP_RUNS):
        begin = time.perf_counter()
        run = subprocess.run(command, capture_output=True, text=True, env=subprocess_env())
        seconds.append(time.perf_counter() - begin)
        assert run.returncode == 0 and 'frameAP' in run.stdout, run.stderr
    assert min(seconds) < HELP_SECONDS, seconds
    cli = repo_path('tools', 'eval_multisports.py')
    loaded = run_script(
        f"""
        import runpy, sys
        sys.argv = [{cli!r}, '--help']
        try:
            runpy.run_path({cli!r}, run_name='__main__')
        except SystemExit:
            pass
        """,
        tmp_path,
    )
    assert loaded == []


def test_registering_applies_every_compatibility_fix(tmp_path):
    """Rule 3 (the registration itself: ``tests/test_registration.py``): registering applies
    the checkpoint fix, which needs torch and so waits until then."""
    run_script(
        """
        import pcca_plugin
        assert 'fix_torch_weights_only_checkpoints' not in pcca_plugin.compat.apply_import_fixes()
        pcca_plugin.register_all_modules()
        assert pcca_plugin.all_modules_registered()
        assert 'fix_torch_weights_only_checkpoints' in pcca_plugin.compat.apply_all()
        """,
        tmp_path,
    )
