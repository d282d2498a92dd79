"""Bad input: clear errors naming file, record and problem; pickles are data, not code."""

import copy
import os
import pickle

import numpy as np
import pytest

from pcca_plugin.evaluation.functional import frame_ap, link_tubes, load_ground_truth, video_ap
from pcca_plugin.testing.evaluation import make_case
from pcca_plugin.utils.pickle_io import UnsafePickleError, dump_pickle, load_pickle


@pytest.fixture
def case():
    return make_case(7)


def test_gt_missing_keys_names_file_and_keys(case, tmp_path):
    gt, _ = case
    del gt['gttubes']
    path = str(tmp_path / 'gt.pkl')
    dump_pickle(gt, path)
    with pytest.raises(KeyError, match=r"gt\.pkl.*missing the keys \['gttubes'\]"):
        load_ground_truth(path)


def test_gt_tube_with_gap_names_video_label_and_frames(case):
    gt, _ = case
    video = gt['test_videos'][0][0]
    label = next(iter(gt['gttubes'][video]))
    tube = gt['gttubes'][video][label][0]
    gt['gttubes'][video][label][0] = np.delete(tube, 1, axis=0)
    with pytest.raises(ValueError, match=rf'{video}.*\[{label}\]\[0\].*contiguous'):
        load_ground_truth(gt)


@pytest.mark.parametrize(
    'mutate, message',
    [
        (lambda d: d[:, :7], r'shape \(M, 8\)'),
        (lambda d: np.where(np.arange(d.shape[0])[:, None] == 3, np.nan, d), 'row 3 holds NaN'),
        (
            lambda d: np.concatenate([d, [[99, 1, 1, 0.5, 0, 0, 1, 1]]]),
            r'video index 99 .*\[0, 4\)',
        ),
        (lambda d: np.concatenate([d, [[0, 1, 42, 0.5, 0, 0, 1, 1]]]), r'label 42 .*\[0, 7\)'),
        (lambda d: np.concatenate([d, [[0, 9999, 1, 0.5, 0, 0, 1, 1]]]), 'frame 9999'),
    ],
    ids=['shape', 'nan', 'video', 'label', 'frame'],
)
def test_bad_frame_detections_name_file_row_and_problem(case, tmp_path, mutate, message):
    gt, dets = case
    path = str(tmp_path / 'frame_dets.pkl')
    dump_pickle(mutate(dets), path)
    with pytest.raises(ValueError, match=message) as info:
        frame_ap(gt, path)
    assert 'frame_dets.pkl' in str(info.value)
    with pytest.raises(ValueError, match=message):
        link_tubes(gt, path)


def test_bad_video_detections(case):
    gt, dets = case
    tubes = link_tubes(gt, dets, len_thr=3)
    label = next(k for k, v in tubes.items() if v)
    broken = copy.deepcopy(tubes)
    video, score, tube = broken[label][0]
    broken[label][0] = (video, score, np.delete(tube, 1, axis=0))
    with pytest.raises(ValueError, match=rf'label {label}, entry 0: frames must be contiguous'):
        video_ap(gt, broken)
    broken[label][0] = ('no/such_video', score, tube)
    with pytest.raises(KeyError, match='no/such_video'):
        video_ap(gt, broken)
    with pytest.raises(ValueError, match='label 77 is out of range'):
        video_ap(gt, {77: []})
    broken[label][0] = (video, float('nan'), tube)
    with pytest.raises(ValueError, match='tube score nan is not finite'):
        video_ap(gt, broken)


def test_empty_detections_file_gives_zero_and_warns(case, tmp_path):
    gt, _ = case
    path = str(tmp_path / 'empty.pkl')
    dump_pickle(np.zeros((0, 8)), path)
    with pytest.warns(UserWarning, match='empty.pkl: no frame detections'):
        assert frame_ap(gt, path).mean_ap == 0.0


class _Exploit:
    def __reduce__(self):
        return (os.system, ('echo pwned',))


def test_restricted_unpickler_refuses_code(tmp_path):
    path = tmp_path / 'evil.pkl'
    path.write_bytes(pickle.dumps({'labels': _Exploit()}))
    with pytest.raises(UnsafePickleError, match=r'evil\.pkl.*refusing to unpickle'):
        load_ground_truth(str(path))


def test_dump_pickle_is_numpy1_compatible_and_round_trips(case, tmp_path):
    gt, dets = case
    tubes = link_tubes(gt, dets.astype(np.float32), len_thr=3)
    payload = dict(frame=dets, video=tubes, scalar=np.float64(0.25), empty=np.zeros((0, 8)))
    path = str(tmp_path / 'out.pkl')
    dump_pickle(payload, path)
    raw = open(path, 'rb').read()
    assert b'numpy._core' not in raw  # numpy 1.26 has no numpy._core
    back = load_pickle(path)
    np.testing.assert_array_equal(back['frame'], dets)
    assert back['scalar'] == 0.25 and back['empty'].shape == (0, 8)
    for label, entries in tubes.items():
        assert len(back['video'][label]) == len(entries)
        for (v1, s1, t1), (v2, s2, t2) in zip(entries, back['video'][label]):
            assert v1 == v2 and s1 == s2 and t1.dtype == t2.dtype
            np.testing.assert_array_equal(t1, t2)
