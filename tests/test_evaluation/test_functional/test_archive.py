"""The submission archive of the 2021 server: what it holds, numpy 1.x reads it, bad input.

The members are inspected with ``pickletools`` (no opcode above protocol 2, no
global outside :data:`PYTHON2_NUMPY1_GLOBALS`) and read back twice: here
(numpy 2, restricted unpickler) and by the bare numpy 1.x interpreter with a
plain ``pickle.load`` as the server did; both readings must be equal.
"""

import json
import os
import pickle
import zipfile

import numpy as np
import pytest

from pcca_plugin.evaluation.functional import (
    ARCHIVE_MEMBERS,
    ARCHIVE_PICKLE_PROTOCOL,
    ARCHIVE_SUFFIX,
    PYTHON2_NUMPY1_GLOBALS,
    VideoList,
    archive_submission,
    read_submission,
    write_submission,
    write_submission_archive,
)
from pcca_plugin.testing import numpy1_python
from pcca_plugin.testing.archive import (
    archive_summary,
    member_pickles,
    numpy1_archive_summaries,
    pickle_protocol_and_globals,
)
from pcca_plugin.testing.evaluation import (
    ENSEMBLE_NUM_CLASSES,
    ENSEMBLE_NUM_FRAMES,
    ENSEMBLE_VIDEOS,
    make_ensemble_dets,
)
from pcca_plugin.testing.malicious_pickles import pickle_payloads, run_unsafely
from pcca_plugin.utils.pickle_io import UnsafePickleError, dump_pickle, dumps_pickle, load_pickle

FRAME, VIDEO = ARCHIVE_MEMBERS
NUM_LABELS = 4


def make_tubes():
    """Linker-like tubes: float32 (L, 6), a numpy and a Python score, labels 1 and 3 only."""
    frames = np.arange(1, 7, dtype=np.float32)[:, None]  # (6, 1)
    tube = np.concatenate([frames, 10 + frames.repeat(4, axis=1), 0.5 + 0 * frames], axis=1)
    return {
        1: [('sport/v_a', np.float64(0.75), tube), ('sport/v_b', 0.25, tube[::2])],
        3: [('sport/v_b', np.float64(0.5), tube + 1)],
    }


def make_frames():
    """(5, 8) rows with labels in 0..3, float32 on purpose (the archive stores float64)."""
    rows = np.arange(40, dtype=np.float32).reshape(5, 8) / 7
    rows[:, 2] = [0, 3, 1, 1, 2]
    return np.asfortranarray(rows)


@pytest.fixture
def archive(tmp_path):
    return write_submission_archive(
        str(tmp_path / 'out' / 'p_submission.zip'), make_frames(), make_tubes(), NUM_LABELS
    )


def zip_of(path, members):
    """A zip holding ``members`` (name -> bytes), written plainly (as a user's zip tool would)."""
    with zipfile.ZipFile(path, 'w') as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return str(path)


def legit_members():
    return {
        FRAME: dumps_pickle(np.zeros((2, 8)), protocol=2, style='numpy1'),
        VIDEO: dumps_pickle({0: []}, protocol=2, style='numpy1'),
    }


# --- what the archive holds ---------------------------------------------------------------


def test_round_trip_holds_the_two_members_as_the_server_reads_them(archive):
    with zipfile.ZipFile(archive) as f:
        assert f.namelist() == list(ARCHIVE_MEMBERS)  # exactly the two, at the root
        assert {info.date_time for info in f.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    submission = read_submission(archive)
    frames = submission.frame_detections
    assert frames.dtype == np.float64 and frames.shape == (5, 8) and frames.flags.c_contiguous
    np.testing.assert_array_equal(frames, make_frames().astype(np.float64))
    tubes = submission.video_detections
    assert sorted(tubes) == list(range(NUM_LABELS))  # every label, even without a tube
    assert tubes[0] == [] and tubes[2] == []
    for label, entries in make_tubes().items():
        assert len(tubes[label]) == len(entries)
        for (name, score, tube), (name2, score2, tube2) in zip(entries, tubes[label]):
            assert (name, score) == (name2, score2) and type(score) is type(score2)
            assert tube2.dtype == np.float32
            np.testing.assert_array_equal(tube, tube2)
    assert submission.frame_source == f'{archive}:{FRAME}'
    assert submission.video_source == f'{archive}:{VIDEO}'


def test_members_are_protocol_2_and_name_only_python2_numpy1_globals(archive, tmp_path):
    empty = write_submission_archive(  # an empty array's data is b'': no __builtin__.bytes
        str(tmp_path / 'empty.zip'), np.zeros((0, 8)), {}, NUM_LABELS
    )
    assert ARCHIVE_PICKLE_PROTOCOL == 2
    assert PYTHON2_NUMPY1_GLOBALS == {
        'numpy.core.multiarray._reconstruct',
        'numpy.ndarray',
        'numpy.dtype',
        'numpy.core.multiarray.scalar',
        '_codecs.encode',
    }
    seen = set()
    for path in (archive, empty):
        members = member_pickles(path)
        assert list(members) == list(ARCHIVE_MEMBERS)
        for name, data in members.items():
            protocol, names = pickle_protocol_and_globals(data)
            assert protocol <= ARCHIVE_PICKLE_PROTOCOL, name
            assert names <= PYTHON2_NUMPY1_GLOBALS, (name, names - PYTHON2_NUMPY1_GLOBALS)
            assert data.startswith(b'\x80\x02')  # PROTO 2
            seen |= names
    assert seen == PYTHON2_NUMPY1_GLOBALS  # arrays, dtypes, numpy scalars and bytes were written


def test_numpy1_reads_the_members_with_a_plain_pickle_load(archive, tmp_path):
    empty = write_submission_archive(str(tmp_path / 'empty.zip'), np.zeros((0, 8)), {}, 2)
    result = numpy1_archive_summaries(numpy1_python(), [archive, empty])
    assert result['numpy'].startswith('1.')
    here = [read_submission(path) for path in (archive, empty)]
    expected = [archive_summary(s.frame_detections, s.video_detections) for s in here]
    assert result['summaries'] == json.loads(json.dumps(expected))
    frames = result['summaries'][0]['frame_detections']
    assert (frames['dtype'], frames['shape'], frames['c_contiguous']) == ('float64', [5, 8], True)
    tubes = result['summaries'][0]['video_detections']
    assert tubes['keys'] == [0, 1, 2, 3] and tubes['value_types'] == ['list']
    assert tubes['entries']['1'][0]['entry_type'] == 'tuple'
    assert {e['score_type'] for e in tubes['entries']['1']} == {'float64', 'float'}
    assert result['summaries'][1]['frame_detections']['shape'] == [0, 8]


def test_equal_inputs_give_equal_archives(archive, tmp_path):
    again = write_submission_archive(
        str(tmp_path / 'again.zip'), make_frames(), make_tubes(), NUM_LABELS
    )
    assert open(archive, 'rb').read() == open(again, 'rb').read()


def test_archive_submission_packs_the_files_of_a_prefix(tmp_path):
    videos = VideoList(
        names=list(ENSEMBLE_VIDEOS),
        nframes=[ENSEMBLE_NUM_FRAMES] * len(ENSEMBLE_VIDEOS),
        resolution=[(120, 160)] * len(ENSEMBLE_VIDEOS),
        labels=[f'class {i}' for i in range(ENSEMBLE_NUM_CLASSES)],
    )
    prefix = str(tmp_path / 'sub' / 'p')
    paths = write_submission(prefix, make_ensemble_dets(1), videos, len_thr=2)
    path = archive_submission(prefix)
    assert path == prefix + ARCHIVE_SUFFIX
    submission = read_submission(path)
    np.testing.assert_array_equal(submission.frame_detections, make_ensemble_dets(1))
    written = load_pickle(paths['video_detections'])
    assert sum(map(len, written.values())) > 0  # tubes were linked and archived
    assert archive_summary(submission.frame_detections, submission.video_detections) == (
        archive_summary(load_pickle(paths['frame_detections']), written)
    )


# --- bad input ----------------------------------------------------------------------------


def test_a_folder_is_read_and_one_with_a_file_missing_is_named(tmp_path):
    folder = tmp_path / 'res'
    folder.mkdir()
    for name, data in legit_members().items():
        (folder / name).write_bytes(data)
    (folder / 'notes.txt').write_text('other files of a folder are ignored')
    submission = read_submission(str(folder))
    assert submission.frame_source == str(folder / FRAME)
    with pytest.raises(FileNotFoundError) as info:
        read_submission(str(tmp_path))  # the files are one level down
    assert f'no {FRAME} and no {VIDEO}' in str(info.value) and 'pass that folder' in str(info.value)
    os.remove(folder / VIDEO)
    with pytest.raises(FileNotFoundError) as info:
        read_submission(str(folder))
    message = str(info.value)
    assert message.startswith(f'{folder}: no {VIDEO} in the submission folder')
    assert f'holds only {FRAME}' in message
    with pytest.raises(FileNotFoundError, match='absent: no such submission'):
        read_submission(str(tmp_path / 'absent'))


@pytest.mark.parametrize(
    'names, expected',
    [
        ([FRAME], [f'no {VIDEO} in the archive', 'at its root']),
        ([VIDEO], [f'no {FRAME} in the archive']),
        (
            [FRAME, VIDEO, 'readme.txt', 'P_videos.json'],
            ['P_videos.json, readme.txt besides the two', 'exactly these two at the archive'],
        ),
        (
            [f'res/{FRAME}', f'res/{VIDEO}'],
            [f'res/{FRAME}, res/{VIDEO} inside a folder', 'at the root of the archive'],
        ),
    ],
)
def test_archive_members_other_than_the_two_at_the_root_are_named(tmp_path, names, expected):
    members = legit_members()
    path = zip_of(tmp_path / 'p.zip', {n: members.get(n.split('/')[-1], b'x') for n in names})
    with pytest.raises(ValueError) as info:
        read_submission(path)
    message = str(info.value)
    assert message.startswith(f'{path}: ')
    assert all(text in message for text in expected), message


def test_not_a_zip_and_a_corrupted_zip_are_named(tmp_path):
    text = tmp_path / 'p.zip'
    text.write_text('not a zip\n')
    with pytest.raises(ValueError, match=f'{text}: not a zip archive, or a corrupted one'):
        read_submission(str(text))
    good = zip_of(tmp_path / 'good.zip', legit_members())
    data = bytearray(open(good, 'rb').read())
    data[40] ^= 0xFF  # inside the first member's data: its CRC no longer matches
    corrupted = tmp_path / 'corrupted.zip'
    corrupted.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f'{corrupted}:{FRAME}: cannot be read .* corrupted'):
        read_submission(str(corrupted))


def test_frame_detections_that_are_a_list_name_the_fix(tmp_path):
    members = legit_members()
    rows = [[0, 1, 0, 0.5, 1, 2, 3, 4]]
    members[FRAME] = pickle.dumps(rows, protocol=2)
    path = zip_of(tmp_path / 'p.zip', members)
    with pytest.raises(ValueError) as info:
        read_submission(path)
    message = str(info.value)
    assert message.startswith(f'{path}:{FRAME}: the frame detections are a list')
    assert 'alldets[:, 2]' in message and 'np.asarray(rows, dtype=np.float64)' in message
    assert '(M, 8)' in message


@pytest.mark.parametrize('array', [np.zeros((3, 7)), np.zeros(8), np.zeros((2, 8, 1))])
def test_frame_detections_of_another_shape_are_named(tmp_path, array):
    members = legit_members()
    members[FRAME] = dumps_pickle(array, protocol=2, style='numpy1')
    path = zip_of(tmp_path / 'p.zip', members)
    with pytest.raises(ValueError, match=rf'{FRAME}: the frame detections have shape .*\(M, 8\)'):
        read_submission(path)


@pytest.mark.parametrize(
    'tubes, expected',
    [
        (
            [('v', 0.5, np.zeros((2, 6)))],
            'the video detections are a list; the server reads a dict',
        ),
        ({0: 'tubes'}, 'the video detections of label 0 are a str, not a list'),
    ],
)
def test_video_detections_that_are_not_a_dict_of_lists_are_named(tmp_path, tubes, expected):
    members = legit_members()
    members[VIDEO] = dumps_pickle(tubes, protocol=2, style='numpy1')
    path = zip_of(tmp_path / 'p.zip', members)
    with pytest.raises(ValueError, match=f'{path}:{VIDEO}: {expected}'):
        read_submission(path)


def test_a_malicious_member_is_refused_before_it_runs(tmp_path):
    marker = str(tmp_path / 'ran')
    payload, refused = pickle_payloads(marker)['os.system']
    members = legit_members()
    members[VIDEO] = payload
    path = zip_of(tmp_path / 'p.zip', members)
    with pytest.raises(UnsafePickleError) as info:
        read_submission(path)
    assert str(info.value).startswith(f'{path}:{VIDEO}: refusing to unpickle {refused}')
    assert not os.path.exists(marker)
    # The control: the payload is live, a plain pickle.load runs it.
    (tmp_path / 'payload.pkl').write_bytes(payload)
    run_unsafely(str(tmp_path / 'payload.pkl'), marker)
    assert os.path.exists(marker)
    # The same archive with the legitimate member is read.
    assert read_submission(zip_of(tmp_path / 'ok.zip', legit_members())).video_detections == {0: []}


@pytest.mark.parametrize(
    'frames, tubes, expected',
    [
        ([[0, 1, 0, 0.5]], {}, 'frame detections have 4 columns'),
        (np.array([[0, 1, 4, 0.5, 1, 2, 3, 4]]), {}, 'row 0 has label 4; labels count the 4'),
        (np.zeros((0, 8)), {4: []}, 'key 4 is not a label 0..3'),
        (np.zeros((0, 8)), {0: [('v', 0.5)]}, 'label 0, entry 0: expected (video_name'),
        (np.zeros((0, 8)), {0: [('v', 0.5, np.zeros(6))]}, 'the tube must be a numeric (L, 6)'),
    ],
)
def test_writing_bad_input_is_named_and_leaves_nothing(tmp_path, frames, tubes, expected):
    path = str(tmp_path / 'p_submission.zip')
    with pytest.raises(ValueError) as info:
        write_submission_archive(path, frames, tubes, NUM_LABELS)
    assert str(info.value).startswith(f'{path}: ') and expected in str(info.value)
    assert os.listdir(tmp_path) == []


def test_a_failed_write_leaves_no_zip_nor_temporary_file(archive, tmp_path, monkeypatch):
    before = open(archive, 'rb').read()

    def fail(*args, **kwargs):
        raise OSError('disk full')

    monkeypatch.setattr(zipfile.ZipFile, 'writestr', fail)
    with pytest.raises(OSError, match='disk full'):
        write_submission_archive(str(tmp_path / 'new.zip'), make_frames(), {}, NUM_LABELS)
    with pytest.raises(OSError, match='disk full'):  # an existing archive is left as it was
        write_submission_archive(archive, make_frames(), {}, NUM_LABELS)
    assert sorted(os.listdir(tmp_path)) == ['out']
    assert os.listdir(os.path.dirname(archive)) == [os.path.basename(archive)]
    assert open(archive, 'rb').read() == before


def test_archive_submission_names_a_missing_file(tmp_path):
    prefix = str(tmp_path / 'p')
    dump_pickle(np.zeros((0, 8)), prefix + '_frame_detections.pkl')
    with pytest.raises(FileNotFoundError) as info:
        archive_submission(prefix)
    assert str(info.value).startswith(f'{prefix}_video_detections.pkl: no such file')
    assert '--outfile-prefix' in str(info.value) and '--out-prefix' in str(info.value)
    assert sorted(os.listdir(tmp_path)) == ['p_frame_detections.pkl']
