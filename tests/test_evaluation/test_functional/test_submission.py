"""The test split becomes a submission: format-only testing, TTA and ensembles without GT.

The val GT of the toy data is withheld (moved out of the data folder) and its
videos prepared as a test split from the videos alone. The files written by
``tools/test.py --format-only`` (:func:`pcca_plugin.apis.run_test`) are then
evaluated as ``tools/eval_multisports.py`` evaluates them
(:func:`pcca_plugin.evaluation.tasks.run_task`) with the withheld GT, and must
give the figures of the normal evaluation of the same checkpoint. The first
run also writes ``--zip``'s archive, which must hold the same two files at
protocol 2 (``test_archive.py`` tests the archive itself).
"""

import json
import os
import os.path as osp
import shutil
import zipfile

import numpy as np
import pytest
from mmengine.config import Config

from pcca_plugin.apis.runner import run_test, set_format_only, use_test_split
from pcca_plugin.datasets.preparation import prepare_multisports_test
from pcca_plugin.datasets.toy_sports import make_toy_sports
from pcca_plugin.evaluation.functional import (
    ARCHIVE_MEMBERS,
    ARCHIVE_PICKLE_PROTOCOL,
    ARCHIVE_SUFFIX,
    PYTHON2_NUMPY1_GLOBALS,
    link_tubes,
    read_submission,
)
from pcca_plugin.evaluation.functional.ensemble import ensemble_files
from pcca_plugin.evaluation.metrics import MultiSportsTubeMetric
from pcca_plugin.evaluation.tasks import run_task
from pcca_plugin.testing import repo_path
from pcca_plugin.testing.archive import archive_summary, member_pickles, pickle_protocol_and_globals
from pcca_plugin.testing.evaluation import run_server2021_reference
from pcca_plugin.testing.inference import (
    CONFIG_DATA_ROOT,
    TINY_PCCA,
    TINY_PCCA_TTA,
)
from pcca_plugin.utils.pickle_io import load_pickle

#: Figures of the two paths agree to this (percent).
TOLERANCE = 1e-6
ANN_DIR = osp.join(CONFIG_DATA_ROOT, 'annotations')
GT_NAME = 'toy_sports_GT.pkl'
#: Smaller than the shared toy data (two runs of the whole test split): 2 test videos
#: of 10 frames, tubes linked from 4 frames on so that short videos have tubes.
SIZES = dict(
    num_train_videos=1,
    num_val_videos=2,
    num_frames=10,
    head_tube_len=(5, 8),
    tail_tubes=dict(train=1, val=1),
)
LINK_LEN_THR = 4
#: The TTA and ensemble runs take every 5th frame (frames 1 and 6).
TTA_FRAME_STRIDE = 5
#: Point the toy config's test set at the prepared test split (``--cfg-options``).
TEST_SPLIT_OPTIONS = {
    'test_dataloader.dataset.ann_file': f'{ANN_DIR}/toy_sports_test.pkl',
    'test_dataloader.dataset.proposal_file': f'{ANN_DIR}/toy_sports_dense_proposals_test.pkl',
    'test_evaluator.link_len_thr': LINK_LEN_THR,
}


@pytest.fixture(scope='module')
def test_split(tmp_path_factory):
    """Toy data whose val GT is withheld and whose val videos are a test split."""
    root = tmp_path_factory.mktemp('submission')
    data = root / CONFIG_DATA_ROOT
    make_toy_sports(str(data), seed=1, **SIZES)
    withheld = root / 'withheld' / GT_NAME
    withheld.parent.mkdir()
    shutil.move(data / GT_NAME, withheld)
    gt = load_pickle(str(withheld))
    videos = root / 'test_videos'
    for name in gt['test_videos'][0]:
        target = videos / (name + '.mp4')
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data / 'videos' / (name + '.mp4'), target)
    prepare_multisports_test(  # prepare_multisports.py --split test
        str(videos),
        [str(data / 'proposals' / 'toy_sports_dense_proposals_val.pkl')],
        str(data / 'annotations'),
        name='toy_sports',
    )
    return dict(root=str(root), withheld=str(withheld), gt=gt)


def _format_only(config, checkpoint, prefix, work_dir, tta=False, options=None, archive=False):
    """``tools/test.py CONFIG CKPT --format-only --outfile-prefix PREFIX [--zip]`` on the test
    split."""
    return run_test(
        config,
        checkpoint,
        work_dir=work_dir,
        tta=tta,
        format_only=True,
        outfile_prefix=prefix,
        cfg_options={**TEST_SPLIT_OPTIONS, **(options or {})},
        archive=archive,
    )


def _evaluate(task, gt, detections, thr=0.5):
    """``tools/eval_multisports.py TASK GT DETECTIONS -t THR``: the report."""
    return run_task(task, gt, detections, thr, progress=False)[0]


def test_format_only_files_score_like_the_normal_evaluation(
    test_split, tiny_checkpoint, tmp_path, monkeypatch
):
    monkeypatch.chdir(test_split['root'])
    assert not osp.exists(osp.join(CONFIG_DATA_ROOT, GT_NAME))  # withheld
    normal = run_test(
        TINY_PCCA,
        tiny_checkpoint,
        work_dir=str(tmp_path / 'normal'),
        cfg_options={
            'test_evaluator.gt_file': test_split['withheld'],
            'test_evaluator.link_len_thr': LINK_LEN_THR,
        },
    )
    prefix = str(tmp_path / 'submission' / 'toy')
    work_dir = str(tmp_path / 'w')
    assert _format_only(TINY_PCCA, tiny_checkpoint, prefix, work_dir, archive=True) == {}

    frames, tubes = prefix + '_frame_detections.pkl', prefix + '_video_detections.pkl'
    with open(prefix + '_videos.json') as f:
        videos = json.load(f)
    assert [v['name'] for v in videos['videos']] == test_split['gt']['test_videos'][0]
    assert [v['nframes'] for v in videos['videos']] == [
        test_split['gt']['nframes'][v] for v in test_split['gt']['test_videos'][0]
    ]
    dets = load_pickle(frames)
    assert dets.ndim == 2 and dets.shape[1] == 8 and len(dets)
    assert sum(len(v) for v in load_pickle(tubes).values()) > 0
    for path in (frames, tubes):  # numpy 1.x has no numpy._core
        with open(path, 'rb') as f:
            assert b'numpy._core' not in f.read()
    # --zip: the archive of the 2021 server holds the same two, at protocol 2.
    members = member_pickles(prefix + ARCHIVE_SUFFIX)
    assert list(members) == list(ARCHIVE_MEMBERS)
    for data in members.values():
        protocol, names = pickle_protocol_and_globals(data)
        assert protocol <= ARCHIVE_PICKLE_PROTOCOL and names <= PYTHON2_NUMPY1_GLOBALS
    archived = read_submission(prefix + ARCHIVE_SUFFIX)
    np.testing.assert_array_equal(archived.frame_detections, dets)
    assert archive_summary(dets, load_pickle(tubes)) == archive_summary(
        archived.frame_detections, archived.video_detections
    )

    gt = test_split['withheld']
    frame_map = _evaluate('frameAP', gt, frames)['frameAP']['mAP']
    video_maps = {thr: _evaluate('videoAP', gt, tubes, thr)['videoAP']['mAP'] for thr in (0.2, 0.5)}
    video_range = _evaluate('videoAP_all', gt, tubes)['videoAP_all']
    assert frame_map > 0.0  # the figures compared are not trivially zero
    assert frame_map == pytest.approx(normal['frame_mAP@0.5'], abs=TOLERANCE)
    for thr, value in video_maps.items():
        assert value == pytest.approx(normal[f'video_mAP@{thr:g}'], abs=TOLERANCE)
    assert video_range['0.10:0.90'] == pytest.approx(normal['video_mAP@0.1:0.9'], abs=TOLERANCE)

    # The 2021 server's scorer (its reference, under numpy 1.x, reading the archive's members
    # with a plain pickle.load) and `eval_multisports.py server2021` on the archive agree.
    served = tmp_path / 'served'
    with zipfile.ZipFile(prefix + ARCHIVE_SUFFIX) as archive:
        archive.extractall(served)
    shutil.copyfile(gt, served / 'gt.pkl')
    _, (expected,) = run_server2021_reference([str(served)], str(tmp_path / 'job.json'))
    figures = run_task('server2021', gt, prefix + ARCHIVE_SUFFIX, progress=False)[0]
    assert list(figures['server2021']) == list(expected)
    for name, value in expected.items():
        assert figures['server2021'][name] == pytest.approx(value, abs=TOLERANCE), name


def test_tta_and_ensemble_of_test_outputs(test_split, tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.chdir(test_split['root'])
    plain, tta = str(tmp_path / 'plain'), str(tmp_path / 'tta')
    stride = {'test_dataloader.dataset.frame_stride': TTA_FRAME_STRIDE}
    _format_only(TINY_PCCA, tiny_checkpoint, plain, str(tmp_path / 'w1'), options=stride)
    _format_only(TINY_PCCA_TTA, tiny_checkpoint, tta, str(tmp_path / 'w2'), True, stride)
    a, b = load_pickle(plain + '_frame_detections.pkl'), load_pickle(tta + '_frame_detections.pkl')
    assert a.shape == b.shape and not np.allclose(a[:, 3], b[:, 3])  # TTA changed the scores
    assert set(np.unique(a[:, 1])) <= set(range(1, SIZES['num_frames'] + 1, TTA_FRAME_STRIDE))

    out = str(tmp_path / 'ensemble')
    inputs = [plain + '_frame_detections.pkl', tta + '_frame_detections.pkl']
    merged, _ = ensemble_files(inputs, out_prefix=out)
    np.testing.assert_allclose(merged[:, 3], (a[:, 3] + b[:, 3]) / 2)
    np.testing.assert_array_equal(load_pickle(out + '_frame_detections.pkl'), merged)
    with open(out + '_videos.json') as f, open(plain + '_videos.json') as g:
        assert json.load(f)['videos'] == json.load(g)['videos']
    # Tubes linked without GT are the tubes linking with the withheld GT gives (on these
    # two frames per video, none is long enough;
    # tests/test_evaluation/test_metrics/test_format_only.py compares the two linkings on
    # detections that make many tubes).
    written = load_pickle(out + '_video_detections.pkl')
    reference = link_tubes(test_split['withheld'], merged)
    assert sorted(written) == sorted(reference)
    for label, entries in reference.items():
        assert len(written[label]) == len(entries)
        for (name, score, tube), (name2, score2, tube2) in zip(entries, written[label]):
            assert name == name2 and score == pytest.approx(score2, abs=0)
            np.testing.assert_array_equal(tube, tube2)

    # Results of another video order cannot be averaged index by index.
    with open(tta + '_videos.json') as f:
        other = json.load(f)
    other['videos'] = other['videos'][::-1]
    with open(tta + '_videos.json', 'w') as f:
        json.dump(other, f)
    with pytest.raises(ValueError, match='list different names'):
        ensemble_files(inputs, out_prefix=out + '2')
    assert not [n for n in os.listdir(tmp_path) if n.startswith('ensemble2')]


def test_format_only_without_outfile_prefix_is_refused(
    test_split, tiny_checkpoint, tmp_path, monkeypatch
):
    monkeypatch.chdir(test_split['root'])
    with pytest.raises(ValueError, match='format_only=True .* outfile_prefix is not set'):
        MultiSportsTubeMetric(format_only=True)
    with pytest.raises(ValueError, match='gt_file is required'):
        MultiSportsTubeMetric()
    work_dir = tmp_path / 'work'
    with pytest.raises(ValueError, match='--format-only .* pass --outfile-prefix'):
        run_test(
            TINY_PCCA,
            tiny_checkpoint,
            work_dir=str(work_dir),
            format_only=True,
            cfg_options=TEST_SPLIT_OPTIONS,
        )
    assert not work_dir.exists()  # refused before the Runner started


def test_test_split_option_swaps_in_the_configs_test_split():
    config = repo_path(
        'configs',
        'pcca',
        'pcca_slowfast-r101-k400-pre_8xb4-8x8x1-train+val-15e_multisports-rgb-256x455.py',
    )
    cfg = Config.fromfile(config)
    use_test_split(cfg)
    set_format_only(cfg, 'work_dirs/submission/pcca')
    dataset = cfg.test_dataloader.dataset
    assert dataset.ann_file == cfg.ann_file_test and dataset.test_mode
    assert dataset.proposal_file == cfg.proposal_file_test
    assert dataset.data_prefix.img == cfg.test_split_root
    evaluator = cfg.test_evaluator
    assert evaluator.format_only and evaluator.gt_file is None
    assert evaluator.outfile_prefix == 'work_dirs/submission/pcca'
    # The toy config has no test split of its own: the option says what to do instead.
    with pytest.raises(ValueError, match='lacks.*--split test.*--format-only'):
        use_test_split(Config.fromfile(TINY_PCCA))
