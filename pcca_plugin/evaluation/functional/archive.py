"""The submission archive the 2021 MultiSports challenge server read.

The 2021 server unpacked the uploaded zip into ``res/`` and read
``res/frame_detections.pkl`` and ``res/video_detections.pkl`` with a plain
``pickle.load`` under Python 2 and numpy 1.x; its maintainers asked for pickle
protocol 2. :func:`write_submission_archive` writes that archive,
``P_submission.zip``, whose root holds exactly the two members:

* ``frame_detections.pkl``: the C-contiguous float64 ``(M, 8)`` array
  ``[video_index, frame, label, score, x1, y1, x2, y2]`` (the scorer indexes
  ``alldets[:, 2]``), ``video_index`` counting the videos of ``P_videos.json``
  (``docs/submission.md``);
* ``video_detections.pkl``: ``{label: [(video_name, tube_score, tube (L, 6))]}``
  with a key for every label ``0 .. num_labels - 1``, an empty list where no
  tube was linked (the scorer reads ``alldets[ilabel]`` for each evaluated
  label).

Both are pickled at protocol 2 in numpy 1.x's spelling
(:func:`~pcca_plugin.utils.pickle_io.dumps_pickle` with ``style='numpy1'``)
and name only the globals of :data:`PYTHON2_NUMPY1_GLOBALS`, the ones a Python
2 pickle of numpy 1.x data names. One of them deserves a word:
``_codecs.encode``. Under protocol 2 a Python 3 pickler writes ``bytes`` (the
data of an array) as ``_codecs.encode(u'<the bytes as latin-1 text>',
'latin1')``. Python 2.7 resolves that call and gets a ``str``, its byte
string, which is what numpy 1.x's ``_reconstruct`` state holds; Python 3 gets
``bytes``. Python 2's own pickles hold such a string as ``BINSTRING``, which
Python 3's default ``pickle.load`` (``encoding='ASCII'``) decodes as text and
fails on the first byte above 127; the ``_codecs.encode`` form is read by a
plain ``pickle.load`` under both.

:func:`~.submission.write_submission` writes it with the files of a
format-only run or an ensemble (``tools/test.py --zip``, ``tools/ensemble.py
--zip``), :func:`~.submission.archive_submission` from such files written
earlier; :func:`read_submission` reads a submission folder or archive, as
the server did but never extracting to disk, with the project's restricted
unpickler, and says what is wrong with a malformed one.
"""

import collections
import os
import os.path as osp
import posixpath
import zipfile
import zlib
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Union

import numpy as np

from pcca_plugin.utils.pickle_io import atomic_output, dumps_pickle, load_pickle, loads_pickle

from .ground_truth import (
    DET_TUBE_MIN_COLUMNS,
    FRAME_DET_COLUMNS,
    unpickle_frame_detections,
)

#: File name ending of the archive after the submission prefix: ``P_submission.zip``.
ARCHIVE_SUFFIX = '_submission.zip'
#: The frame-detection member (frame-mAP).
FRAME_MEMBER = 'frame_detections.pkl'
#: The video-detection member (video-mAP).
VIDEO_MEMBER = 'video_detections.pkl'
#: What the archive's root holds, exactly.
ARCHIVE_MEMBERS = (FRAME_MEMBER, VIDEO_MEMBER)
#: The pickle protocol the 2021 server asked for (Python 2 reads protocols 0-2).
ARCHIVE_PICKLE_PROTOCOL = 2
#: The globals a Python 2.7 pickle of numpy 1.x data names; the members name no other.
PYTHON2_NUMPY1_GLOBALS = frozenset(
    {
        'numpy.core.multiarray._reconstruct',  # an array
        'numpy.ndarray',  # the array's class, passed to _reconstruct
        'numpy.dtype',  # the array's / scalar's dtype
        'numpy.core.multiarray.scalar',  # a numpy scalar
        '_codecs.encode',  # bytes under protocols 0-2 (see the module docstring)
    }
)
#: Member timestamp: the earliest a zip can hold, so that equal inputs give equal archives.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
#: Fastest deflate: it shrinks a member's protocol-2 text of array bytes (up to 2x their
#: size as UTF-8) back to about their size; level 6 gained 1% more at 3x the time
#: (2M random rows: 184 MB pickle -> 136 MB in 5 s at level 1, 133 MB in 14 s at level 6).
ZIP_COMPRESS_LEVEL = 1
#: Unix permissions of the members (rw-r--r--), in the high 16 bits of ``external_attr``.
MEMBER_PERMISSIONS = 0o644
_UNIX_MODE_SHIFT = 16
#: Columns of a frame-detection row; the label column.
NUM_FRAME_COLUMNS = len(FRAME_DET_COLUMNS)
LABEL_COLUMN = FRAME_DET_COLUMNS.index('label')
#: numpy kinds a frame-detection array may have: bool, signed/unsigned int, float.
NUMERIC_KINDS = 'biuf'
#: What the tools that write an archive are, for the messages.
HOW_TO_WRITE = (
    'tools/test.py CONFIG CKPT --test-split --outfile-prefix P --zip, or tools/ensemble.py '
    '... --out-prefix P --zip'
)
#: Errors of a zip whose member cannot be read back (corrupted data, unsupported features).
_UNREADABLE_MEMBER_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    RuntimeError,
    NotImplementedError,
)

FRAME_ROW_LAYOUT = '[video_index, frame, label, score, x1, y1, x2, y2]'
VIDEO_LAYOUT = 'a dict label -> list of (video_name, tube_score, tube)'


@dataclass
class Submission:
    """The two files of a submission, as the server unpickles them.

    Attributes:
        frame_detections: ``(M, 8)`` numeric array as stored (not converted).
        video_detections: ``{label: [(video_name, tube_score, tube (L, >=5))]}`` as stored.
        frame_source: where the frame detections came from, for messages
            (``'P_submission.zip:frame_detections.pkl'`` or the file's path).
        video_source: the same for the video detections.
    """

    frame_detections: Optional[np.ndarray]
    video_detections: Dict[int, list]
    frame_source: str
    video_source: str

    def take_frame_detections(self) -> np.ndarray:
        """The frame detections, dropping this submission's reference to them.

        A scorer that is done with them can then free the largest array of the
        submission (640 MB for the MultiSports validation set) before it scores
        the tubes.

        Raises:
            RuntimeError: they were taken already.
        """
        if self.frame_detections is None:
            raise RuntimeError(f'{self.frame_source}: the frame detections were taken already')
        frames, self.frame_detections = self.frame_detections, None
        return frames


# --- writing ------------------------------------------------------------------------------


def _frame_detections_to_write(frame_detections, num_labels: int, where: str) -> np.ndarray:
    """The C-contiguous float64 ``(M, 8)`` array; ValueError naming ``where`` otherwise."""
    array = np.asarray(frame_detections)
    if array.dtype.kind not in NUMERIC_KINDS or array.ndim != 2:
        raise ValueError(
            f'{where}: frame detections must be a numeric (M, {NUM_FRAME_COLUMNS}) array '
            f'{FRAME_ROW_LAYOUT}, found {array.dtype} of shape {array.shape}'
        )
    if array.shape[1] != NUM_FRAME_COLUMNS:
        raise ValueError(
            f'{where}: frame detections have {array.shape[1]} columns; the server reads '
            f'{NUM_FRAME_COLUMNS}: {FRAME_ROW_LAYOUT}'
        )
    array = np.ascontiguousarray(array, dtype=np.float64)
    labels = array[:, LABEL_COLUMN]
    bad = np.flatnonzero((labels != np.round(labels)) | (labels < 0) | (labels >= num_labels))
    if bad.size:
        raise ValueError(
            f'{where}: row {int(bad[0])} has label {labels[bad[0]]:g}; labels count the '
            f'{num_labels} classes from 0'
        )
    return array


def _video_detections_to_write(video_detections, num_labels: int, where: str) -> Dict[int, list]:
    """``{label: [(name, score, tube)]}`` with a list for every label; ValueError otherwise."""
    if not isinstance(video_detections, Mapping):
        raise ValueError(
            f'{where}: video detections must be {VIDEO_LAYOUT}, found '
            f'{type(video_detections).__name__}'
        )
    tubes: Dict[int, list] = {label: [] for label in range(num_labels)}
    for label, entries in video_detections.items():
        if (
            isinstance(label, (bool, np.bool_))
            or not isinstance(label, (int, np.integer))
            or not 0 <= label < num_labels
        ):
            raise ValueError(
                f'{where}: video detections key {label!r} is not a label 0..{num_labels - 1}'
            )
        if not isinstance(entries, (list, tuple)):
            raise ValueError(
                f'{where}: video detections of label {label} are a {type(entries).__name__}, '
                'not a list of (video_name, tube_score, tube)'
            )
        for i, entry in enumerate(entries):
            tubes[int(label)].append(_tube_entry(entry, f'{where}: label {label}, entry {i}'))
    return tubes


def _tube_entry(entry, where: str) -> tuple:
    """One ``(video_name, tube_score, tube)``, the tube made C-contiguous (values unchanged)."""
    if not isinstance(entry, (tuple, list)) or len(entry) != 3:
        raise ValueError(f'{where}: expected (video_name, tube_score, tube), found {entry!r}')
    name, score, tube = entry
    if not isinstance(name, str):
        raise ValueError(f'{where}: video name {name!r} is not a string')
    if isinstance(score, (bool, np.bool_)) or not isinstance(score, (int, float, np.number)):
        raise ValueError(f'{where}: tube score {score!r} is not a number')
    if (
        not isinstance(tube, np.ndarray)
        or tube.dtype.kind not in NUMERIC_KINDS
        or tube.ndim != 2
        or tube.shape[1] < DET_TUBE_MIN_COLUMNS
    ):
        shape = getattr(tube, 'shape', type(tube).__name__)
        raise ValueError(
            f'{where}: the tube must be a numeric (L, 6) array [frame, x1, y1, x2, y2, '
            f'box_score], found {shape}'
        )
    return name, score, np.ascontiguousarray(tube)


def _archive_pickle(obj) -> bytes:
    """Protocol 2, numpy 1.x names, only :data:`PYTHON2_NUMPY1_GLOBALS`."""
    return dumps_pickle(obj, protocol=ARCHIVE_PICKLE_PROTOCOL, style='numpy1', python2_globals=True)


def _write_zip_atomically(path: str, members: Dict[str, bytes]) -> None:
    """Write ``members`` (name -> bytes) as a zip: temporary file in the same folder, rename."""
    with atomic_output(path) as f, zipfile.ZipFile(f, 'w') as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = MEMBER_PERMISSIONS << _UNIX_MODE_SHIFT
            archive.writestr(info, data, compresslevel=ZIP_COMPRESS_LEVEL)


def write_submission_archive(
    path: Union[str, os.PathLike],
    frame_detections: np.ndarray,
    video_detections: Mapping,
    num_labels: int,
) -> str:
    """Write the archive the 2021 server reads; everything is checked before writing.

    Args:
        path: the zip to write (``P_submission.zip``); its folder is created.
            It is written to a temporary file in the same folder and renamed,
            so a failure leaves neither a partial zip nor a temporary file.
        frame_detections: ``(M, 8)`` numeric array ``[video_index, frame,
            label, score, x1, y1, x2, y2]``; stored as C-contiguous float64.
        video_detections: ``{label: [(video_name, tube_score, tube (L, 6))]}``;
            stored with a key for every label ``0 .. num_labels - 1``; names,
            scores and tube values as given.
        num_labels: the number of classes.

    Returns:
        ``path`` as a string.

    Raises:
        ValueError: the frame detections are not ``(M, 8)`` numbers or hold a
            label outside ``0 .. num_labels - 1``; the video detections are
            not a dict of lists of ``(str, number, (L, >=5) array)`` keyed by
            labels. The message names ``path`` and the field.
    """
    path = os.fspath(path)
    frames = _frame_detections_to_write(frame_detections, num_labels, path)
    tubes = _video_detections_to_write(video_detections, num_labels, path)
    members = {FRAME_MEMBER: _archive_pickle(frames), VIDEO_MEMBER: _archive_pickle(tubes)}
    _write_zip_atomically(path, members)
    return path


def archive_path(prefix: str) -> str:
    """``P_submission.zip`` of the submission prefix ``P``."""
    return prefix + ARCHIVE_SUFFIX


# --- reading ------------------------------------------------------------------------------


def read_submission(path: Union[str, os.PathLike]) -> Submission:
    """Read a submission as the 2021 server did: a folder or a zip holding the two files.

    Nothing is extracted to disk: the members' bytes are unpickled with the
    restricted unpickler (:func:`~pcca_plugin.utils.pickle_io.loads_pickle`),
    which refuses any global that is not plain data before anything runs. The
    frame detections must be a 2-D numpy array of 8 numeric columns and the
    video detections a dict of lists, as the server's scorer needs; label and
    video ranges are the GT's to check (``check_frame_detections`` /
    ``check_video_detections``).

    Args:
        path: a folder holding ``frame_detections.pkl`` and
            ``video_detections.pkl`` (other files are ignored), or a zip whose
            root holds exactly those two.

    Raises:
        FileNotFoundError: ``path`` does not exist, or a folder lacks one of
            the two files (named).
        ValueError: not a zip or a corrupted one; a zip that lacks one of the
            two members, holds them inside a folder, or holds others (named);
            a member that is not of the layout above (member, field and fix).
        pickle.UnpicklingError: a member is not a readable pickle;
            :class:`~pcca_plugin.utils.pickle_io.UnsafePickleError` when it
            names a non-data global (the member and the global).
    """
    path = os.fspath(path)
    if osp.isdir(path):
        files = _folder_members(path)
        with open(files[FRAME_MEMBER], 'rb') as f:
            frames = unpickle_frame_detections(f, files[FRAME_MEMBER])
        tubes = load_pickle(files[VIDEO_MEMBER])
        sources = files
    elif osp.isfile(path):
        frames, tubes = _read_zip(path)
        sources = {member: f'{path}:{member}' for member in ARCHIVE_MEMBERS}
    else:
        raise FileNotFoundError(
            f'{path}: no such submission; give a folder or a .zip holding '
            f'{FRAME_MEMBER} and {VIDEO_MEMBER}'
        )
    check_archived_frame_detections(frames, sources[FRAME_MEMBER])
    check_archived_video_detections(tubes, sources[VIDEO_MEMBER])
    return Submission(frames, tubes, sources[FRAME_MEMBER], sources[VIDEO_MEMBER])


def _folder_members(folder: str) -> Dict[str, str]:
    """``{member: file}`` of a submission folder; FileNotFoundError naming a missing one."""
    files = {member: osp.join(folder, member) for member in ARCHIVE_MEMBERS}
    missing = [member for member, file in files.items() if not osp.isfile(file)]
    if missing:
        present = [m for m in ARCHIVE_MEMBERS if m not in missing]
        holds = f'it holds only {present[0]}' if present else 'it holds neither'
        nested = osp.join(folder, 'res')
        if all(osp.isfile(osp.join(nested, m)) for m in ARCHIVE_MEMBERS):
            hint = f'; the two are in {nested}: pass that folder'
        else:
            hint = (
                f'; copy P_{missing[0]} of the submission there as {missing[0]}, or give the '
                f'P{ARCHIVE_SUFFIX} that {HOW_TO_WRITE} writes'
            )
        raise FileNotFoundError(
            f'{folder}: no {" and no ".join(missing)} in the submission folder ({holds}); a '
            f'submission holds {FRAME_MEMBER} and {VIDEO_MEMBER}{hint}'
        )
    return files


def _read_zip(path: str):
    """``(frame detections, video detections)`` unpickled from a submission archive.

    The members are unpickled as they are decompressed (the frame detections
    with one copy of their data in memory); each is then read to its end, so
    that zip checks its CRC.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(
            f'{path}: not a zip archive, or a corrupted one ({exc}); a submission is a folder '
            f'or a .zip holding {FRAME_MEMBER} and {VIDEO_MEMBER} at its root ({HOW_TO_WRITE} '
            'writes one)'
        ) from None
    with archive:
        check_archive_members(archive.namelist(), path)
        loaded = {}
        for member in ARCHIVE_MEMBERS:
            source = f'{path}:{member}'
            try:
                with archive.open(member) as stream:
                    if member == FRAME_MEMBER:
                        loaded[member] = unpickle_frame_detections(stream, source)
                    else:
                        loaded[member] = loads_pickle(stream, source)
                    stream.read()  # to the end: a corrupted member fails its CRC check here
            except _UNREADABLE_MEMBER_ERRORS as exc:
                raise ValueError(
                    f'{source}: cannot be read from the archive '
                    f'({type(exc).__name__}: {exc}); the archive is corrupted, make it again'
                ) from None
    return loaded[FRAME_MEMBER], loaded[VIDEO_MEMBER]


def check_archive_members(names: List[str], path: str = '<archive>') -> None:
    """Raise ValueError unless ``names`` (a zip's member names) are exactly the two, at the root.

    The message names the members that are inside a folder (put them at the
    root), missing, repeated or besides the two.
    """
    names = [name.replace('\\', '/') for name in names]
    nested = [
        name
        for name in names
        if '/' in name.rstrip('/') and posixpath.basename(name.rstrip('/')) in ARCHIVE_MEMBERS
    ]
    if nested:
        raise ValueError(
            f'{path}: holds {", ".join(nested)} inside a folder; the server reads '
            f'{FRAME_MEMBER} and {VIDEO_MEMBER} at the root of the archive: zip the two files '
            f'themselves, not their folder (or let {HOW_TO_WRITE} write it)'
        )
    missing = [member for member in ARCHIVE_MEMBERS if member not in names]
    if missing:
        raise ValueError(
            f'{path}: no {" and no ".join(missing)} in the archive; it must hold '
            f'{FRAME_MEMBER} (frame-mAP) and {VIDEO_MEMBER} (video-mAP) at its root'
        )
    repeated = sorted(name for name, n in collections.Counter(names).items() if n > 1)
    others = sorted(set(names) - set(ARCHIVE_MEMBERS))
    if repeated or others:
        what = (
            f'{", ".join(others)} besides the two'
            if others
            else f'{", ".join(repeated)} more than once'
        )
        raise ValueError(
            f"{path}: holds {what}; the server reads exactly these two at the archive's root: "
            f'{FRAME_MEMBER}, {VIDEO_MEMBER}. Make the archive of those two alone'
        )


def check_archived_frame_detections(frames, source: str) -> np.ndarray:
    """``frames`` if it is what the 2021 scorer indexes: a 2-D numeric array of 8 columns.

    Raises:
        ValueError: naming ``source``, what was found and the fix.
    """
    if not isinstance(frames, np.ndarray):
        raise ValueError(
            f'{source}: the frame detections are a {type(frames).__name__}, not a numpy array; '
            'the 2021 scorer indexes alldets[:, 2] and would crash on it. Save '
            f'np.asarray(rows, dtype=np.float64) of shape (M, {NUM_FRAME_COLUMNS}) '
            f'{FRAME_ROW_LAYOUT} instead and make the archive again'
        )
    if frames.ndim != 2 or frames.shape[1] != NUM_FRAME_COLUMNS:
        raise ValueError(
            f'{source}: the frame detections have shape {frames.shape}; the server reads an '
            f'(M, {NUM_FRAME_COLUMNS}) array {FRAME_ROW_LAYOUT}. Save that array (float64) and '
            'make the archive again'
        )
    if frames.dtype.kind not in NUMERIC_KINDS:
        raise ValueError(
            f'{source}: the frame detections have dtype {frames.dtype}, not numbers; save '
            f'np.asarray(rows, dtype=np.float64) of shape (M, {NUM_FRAME_COLUMNS})'
        )
    return frames


def check_archived_video_detections(tubes, source: str) -> Dict[int, list]:
    """``tubes`` if it is a dict whose every value is a list (the scorer's ``alldets[ilabel]``).

    The entries are checked against the GT by ``check_video_detections``.

    Raises:
        ValueError: naming ``source``, the label and what was found.
    """
    if not isinstance(tubes, dict):
        raise ValueError(
            f'{source}: the video detections are a {type(tubes).__name__}; the server reads '
            f'{VIDEO_LAYOUT} (tube (L, 6) [frame, x1, y1, x2, y2, box_score])'
        )
    bad: Optional[tuple] = next(
        ((label, v) for label, v in tubes.items() if not isinstance(v, (list, tuple))), None
    )
    if bad is not None:
        raise ValueError(
            f'{source}: the video detections of label {bad[0]!r} are a {type(bad[1]).__name__}, '
            'not a list of (video_name, tube_score, tube)'
        )
    return tubes
