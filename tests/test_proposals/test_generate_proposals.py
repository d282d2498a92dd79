"""End to end on CPU: train the R-18 person detector, generate proposals, resume, evaluate."""

import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest

from pcca_plugin.proposals.detector import PersonDetector
from pcca_plugin.proposals.evaluation_report import evaluate_proposal_files, write_results_json
from pcca_plugin.proposals.frames import FrameSource
from pcca_plugin.proposals.generation import (
    collect_sources,
    generate_proposal_file,
    generate_shards,
)
from pcca_plugin.proposals.shards import CorruptShardError, shard_path
from pcca_plugin.testing import run_tool
from pcca_plugin.testing.inference import R18_PERSON_CONFIG
from pcca_plugin.utils.multisports_format import frame_key, parse_frame_key
from pcca_plugin.utils.pickle_io import load_pickle

pytestmark = pytest.mark.slow
MIN_SCORE = 0.05


def _generate(trained, toy_data, out, **options):
    """What ``generate_proposals.py CONFIG CKPT --gt GT --split val --video-root VIDEOS --out OUT
    --batch-size 3 --no-progress`` runs; ``options``: ``max_videos``, ``part``, ``redo_corrupt``."""
    detector = PersonDetector(trained['config'], trained['checkpoint'])
    sources = collect_sources(
        gt_file=toy_data['gt_file'], split='val', video_root=osp.join(toy_data['root'], 'videos')
    )
    return generate_proposal_file(
        detector.detect,
        detector.fingerprint,
        sources,
        out,
        batch_size=3,
        show_progress=False,
        **options,
    )


def _generate_from_paths(trained, paths, root, out, frame_interval=1):
    """What ``generate_proposals.py CONFIG CKPT --videos PATHS --video-root ROOT --out OUT
    [--frame-interval K] --no-progress`` runs."""
    detector = PersonDetector(trained['config'], trained['checkpoint'])
    sources = collect_sources(videos=paths, video_root=root)
    return generate_proposal_file(
        detector.detect,
        detector.fingerprint,
        sources,
        out,
        frame_interval=frame_interval,
        show_progress=False,
    )


def _check_proposal_file(path, videos, nframes, frame_interval=1):
    proposals = load_pickle(path)
    expected = [frame_key(v, f) for v in videos for f in range(1, nframes[v] + 1, frame_interval)]
    assert list(proposals) == expected
    for key, rows in proposals.items():
        assert parse_frame_key(key)[0] in videos
        assert rows.dtype == np.float32 and rows.ndim == 2 and rows.shape[1] == 5
        assert np.all((rows[:, :4] >= 0) & (rows[:, :4] <= 1))
        assert np.all(rows[:, 2] >= rows[:, 0]) and np.all(rows[:, 3] >= rows[:, 1])
        assert np.all((rows[:, 4] >= MIN_SCORE) & (rows[:, 4] <= 1))
        assert np.all(np.diff(rows[:, 4]) <= 0), f'{key}: not sorted by score'
    return proposals


@pytest.fixture(scope='module')
def uninterrupted_run(trained_detector, toy_data, tmp_path_factory):
    """generate_proposals.py over the two validation videos in one go."""
    folder = tmp_path_factory.mktemp('uninterrupted')
    out = str(folder / 'val_proposals.pkl')
    report = _generate(trained_detector, toy_data, out)
    return dict(out=out, shard_dir=str(folder / 'val_proposals_shards'), report=report)


def test_train_generate_evaluate(trained_detector, toy_data, toy_coco, uninterrupted_run, tmp_path):
    # The Runner trained and validated with the stock CocoMetric on the converted json.
    runner = trained_detector['runner']
    assert runner.iter == runner.train_loop.max_iters
    assert osp.isfile(trained_detector['checkpoint'])
    metrics = runner.message_hub.log_scalars
    assert 'val/coco/bbox_mAP_50' in metrics or 'coco/bbox_mAP_50' in metrics

    out, report = uninterrupted_run['out'], uninterrupted_run['report']
    videos = toy_data['val_videos']
    assert report.computed == videos and report.complete
    proposals = _check_proposal_file(out, videos, toy_data['gt']['nframes'])
    assert sum(len(rows) for rows in proposals.values()) > 0
    for video in videos:
        assert osp.isfile(shard_path(uninterrupted_run['shard_dir'], video))

    json_file = str(tmp_path / 'eval.json')
    # What `eval_proposals.py OUT GT --json JSON` writes.
    write_results_json(evaluate_proposal_files(out, toy_data['gt_file']), json_file)
    with open(json_file) as f:
        results = json.load(f)
    assert set(results['per_video']) == set(videos)
    for stats in [results['overall'], *results['per_video'].values()]:
        assert 0.0 <= stats['AP'] <= 100.0 and 0.0 <= stats['AR'] <= 100.0
    assert results['overall']['frames_without_proposals'] == 0
    num_boxes = sum(
        len(b) for v in videos for t in toy_data['gt']['gttubes'][v].values() for b in t
    )
    assert results['overall']['num_gt_boxes'] <= num_boxes
    # The same file is what the MultiSports preparation / dataset reads as person boxes.
    from pcca_plugin.datasets.preparation import split_proposals

    accepted = split_proposals(load_pickle(out), toy_data['gt'], videos, source=out)
    assert list(accepted) == list(proposals)


def test_interrupted_run_resumes_to_the_same_file(
    trained_detector, toy_data, uninterrupted_run, tmp_path
):
    resumed = str(tmp_path / 'resumed' / 'props.pkl')
    first = _generate(trained_detector, toy_data, resumed, max_videos=1)
    assert first.computed == toy_data['val_videos'][:1] and not first.complete
    assert not osp.exists(resumed), 'the merged file is written only when every video is done'
    shard = shard_path(str(tmp_path / 'resumed' / 'props_shards'), toy_data['val_videos'][0])
    mtime = os.stat(shard).st_mtime_ns
    second = _generate(trained_detector, toy_data, resumed)
    assert second.reused == toy_data['val_videos'][:1]
    assert second.computed == toy_data['val_videos'][1:]
    assert os.stat(shard).st_mtime_ns == mtime, 'a finished shard was rewritten'
    with open(uninterrupted_run['out'], 'rb') as a, open(resumed, 'rb') as b:
        assert a.read() == b.read()


def test_two_parts_sharing_a_work_dir_give_the_same_file(
    trained_detector, toy_data, uninterrupted_run, tmp_path
):
    out = str(tmp_path / 'props.pkl')
    first = _generate(trained_detector, toy_data, out, part=(1, 2))
    assert first.computed == toy_data['val_videos'][:1]
    assert not osp.exists(out), 'part 1 must wait for part 2 before merging'
    second = _generate(trained_detector, toy_data, out, part=(2, 2))
    assert second.computed == toy_data['val_videos'][1:]
    with open(uninterrupted_run['out'], 'rb') as a, open(out, 'rb') as b:
        assert a.read() == b.read()


def test_crash_inside_a_video_leaves_no_partial_shard(trained_detector, toy_data, tmp_path):
    detector = PersonDetector(trained_detector['config'], trained_detector['checkpoint'])
    sources = [
        FrameSource(v, osp.join(toy_data['root'], 'rawframes', v)) for v in toy_data['val_videos']
    ]
    calls = []

    def crashing_detect(images):
        calls.append(len(images))
        if len(calls) == 3:  # first batch of the second video (batch 4, 8 frames per video)
            raise KeyboardInterrupt
        return detector.detect(images)

    shard_dir = str(tmp_path / 'shards')
    with pytest.raises(KeyboardInterrupt):
        generate_shards(
            crashing_detect,
            sources,
            shard_dir,
            detector.fingerprint,
            batch_size=4,
            show_progress=False,
        )
    assert osp.isfile(shard_path(shard_dir, sources[0].name))
    assert not osp.exists(shard_path(shard_dir, sources[1].name))
    leftovers = [n for _, _, files in os.walk(shard_dir) for n in files if n.endswith('.tmp')]
    assert leftovers == []
    report = generate_shards(
        detector.detect,
        sources,
        shard_dir,
        detector.fingerprint,
        batch_size=4,
        frame_interval=1,
        show_progress=False,
    )
    assert report.reused == [sources[0].name] and report.computed == [sources[1].name]


def test_corrupted_shard_is_an_error_or_recomputed_on_request(
    trained_detector, toy_data, uninterrupted_run, tmp_path
):
    out = str(tmp_path / 'props.pkl')
    shutil.copytree(uninterrupted_run['shard_dir'], str(tmp_path / 'props_shards'))
    with open(uninterrupted_run['out'], 'rb') as f:
        reference = f.read()
    shard = shard_path(str(tmp_path / 'props_shards'), toy_data['val_videos'][1])
    with open(shard, 'r+b') as f:
        f.truncate(os.path.getsize(shard) // 3)
    with pytest.raises(CorruptShardError, match=osp.basename(shard) + ': corrupted or truncated'):
        _generate(trained_detector, toy_data, out)
    redo = _generate(trained_detector, toy_data, out, redo_corrupt=True)
    assert redo.reused == toy_data['val_videos'][:1]
    assert redo.computed == toy_data['val_videos'][1:]
    with open(out, 'rb') as f:
        assert f.read() == reference


def test_every_kth_frame_of_frame_folders(trained_detector, toy_data, tmp_path):
    root = osp.join(toy_data['root'], 'rawframes')
    videos = toy_data['val_videos']
    out = str(tmp_path / 'k2.pkl')
    paths = [osp.join(root, v) for v in videos]
    _generate_from_paths(trained_detector, paths, root, out, frame_interval=2)
    _check_proposal_file(out, videos, toy_data['gt']['nframes'], frame_interval=2)
    # Other settings in the same shard folder: refused rather than mixed.
    from pcca_plugin.proposals.shards import ShardSettingsMismatch

    with pytest.raises(ShardSettingsMismatch, match='frame_interval: shard 2 vs now 1'):
        _generate_from_paths(trained_detector, paths, root, out)


def test_bad_inputs(trained_detector, toy_data, tmp_path):
    # An undecodable video.
    broken = tmp_path / 'broken.mp4'
    broken.write_bytes(b'\x00' * 4096)
    with pytest.raises(Exception, match='broken.mp4'):
        _generate_from_paths(trained_detector, [str(broken)], None, str(tmp_path / 'p.pkl'))
    assert not osp.exists(tmp_path / 'p.pkl')
    # An empty frame folder.
    empty = tmp_path / 'v_empty'
    empty.mkdir()
    with pytest.raises(Exception, match='v_empty: frame folder holds no image'):
        _generate_from_paths(trained_detector, [str(empty)], None, str(tmp_path / 'q.pkl'))


@pytest.mark.parametrize(
    'folder, message',
    [('v_empty', 'v_empty: frame folder holds no image'), ('v_missing', 'v_missing')],
)
def test_bad_frame_folders_on_the_command_line(trained_detector, tmp_path, folder, message):
    """generate_proposals.py with an empty or a missing frame folder: the package's error in
    one line and exit status 1; nothing written."""
    if folder == 'v_empty':
        (tmp_path / folder).mkdir()
    out = str(tmp_path / 'p.pkl')
    checkpoint = trained_detector['checkpoint']
    args = [R18_PERSON_CONFIG, checkpoint, '--videos', str(tmp_path / folder), '--out', out]
    result = run_tool('det/generate_proposals.py', *args, '--no-progress')
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith('generate_proposals.py: error: ') and message in last, last
    assert last.endswith('(rerun with --debug for the traceback)')
    assert not osp.exists(out)
