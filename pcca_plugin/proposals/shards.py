"""Per-video proposal shards: written atomically, validated when resumed, merged at the end.

Proposal generation over a large dataset runs for hours, so it keeps one
shard per finished video under a shard folder and, when started again,
skips the videos whose shard is present and valid. A shard is written to a
temporary name and renamed (:func:`~pcca_plugin.utils.pickle_io.dump_pickle`),
so an interruption leaves either the complete shard or none.

A shard is a pickled dict::

    {
        'format': 'pcca_plugin/proposal-shard', 'version': 1,
        'video': 'basketball/v_x_c001',
        'settings': {...},            # detector and sampling; must match to resume
        'proposals': {frame_key: np.ndarray[n, 5] float32},
    }
"""

import os
import os.path as osp
import pickle
from collections import OrderedDict
from typing import Dict, Mapping, Sequence

import numpy as np

from ..utils.multisports_format import parse_frame_key
from ..utils.pickle_io import dump_pickle, load_pickle

SHARD_FORMAT = 'pcca_plugin/proposal-shard'
SHARD_VERSION = 1
SHARD_SUFFIX = '.pkl'
#: Columns of a proposal row: x1, y1, x2, y2, score.
PROPOSAL_COLUMNS = 5


class CorruptShardError(RuntimeError):
    """A shard file cannot be read or does not hold a valid shard."""


class ShardSettingsMismatch(RuntimeError):
    """A shard was made with other settings (detector, frame interval...) than this run."""


def shard_path(shard_dir: str, video: str) -> str:
    """Where the shard of ``video`` lives: ``<shard_dir>/<video>.pkl`` (folders kept).

    Raises:
        ValueError: the video name is absolute or climbs out of ``shard_dir``.
    """
    parts = video.split('/')
    if osp.isabs(video) or any(part in ('', '.', '..') for part in parts):
        raise ValueError(
            f'video name {video!r} cannot be used as a shard path; names are '
            "relative paths like 'basketball/v_x_c001'"
        )
    return osp.join(shard_dir, *parts) + SHARD_SUFFIX


def write_shard(
    path: str, video: str, proposals: Mapping[str, np.ndarray], settings: Mapping
) -> None:
    """Write one video's proposals atomically (temporary file, then rename).

    Args:
        path: destination (:func:`shard_path`).
        video: video name.
        proposals: frame key -> np.ndarray[n, 5] float32, normalised.
        settings: what must match for the shard to be reused.
    """
    dump_pickle(
        {
            'format': SHARD_FORMAT,
            'version': SHARD_VERSION,
            'video': video,
            'settings': dict(settings),
            'proposals': OrderedDict(proposals),
        },
        path,
    )


def read_shard(path: str, video: str, settings: Mapping) -> Dict[str, np.ndarray]:
    """Load and validate one shard.

    Args:
        path: shard file.
        video: the video it must hold.
        settings: the settings of this run; every key must match the shard's.

    Returns:
        frame key -> np.ndarray[n, 5] float32.

    Raises:
        CorruptShardError: unreadable/truncated file, or wrong structure.
        ShardSettingsMismatch: the shard was made with other settings.
    """
    fix = f'delete {path} to recompute that video'
    try:
        shard = load_pickle(path)
    except (pickle.UnpicklingError, OSError) as exc:
        raise CorruptShardError(
            f'{path}: corrupted or truncated proposal shard ({exc}); '
            f'{fix}, or rerun with --redo-corrupt'
        ) from exc
    if not isinstance(shard, dict) or shard.get('format') != SHARD_FORMAT:
        raise CorruptShardError(
            f'{path}: not a proposal shard (no format tag {SHARD_FORMAT!r}); {fix}'
        )
    if shard.get('version') != SHARD_VERSION:
        raise CorruptShardError(
            f'{path}: shard version {shard.get("version")!r}, this tool '
            f'reads version {SHARD_VERSION}; {fix}'
        )
    if shard.get('video') != video:
        raise CorruptShardError(
            f'{path}: holds video {shard.get("video")!r}, expected {video!r}; {fix}'
        )
    stored = shard.get('settings')
    if not isinstance(stored, dict):
        raise CorruptShardError(f'{path}: has no settings dict; {fix}')
    differing = {
        key: (stored.get(key), value) for key, value in settings.items() if stored.get(key) != value
    }
    if differing:
        detail = ', '.join(
            f'{key}: shard {old!r} vs now {new!r}' for key, (old, new) in differing.items()
        )
        raise ShardSettingsMismatch(
            f'{path}: made with other settings ({detail}); use another --work-dir for the new '
            f'settings, or delete the shard folder {osp.dirname(path)} to recompute'
        )
    proposals = shard.get('proposals')
    if not isinstance(proposals, dict):
        raise CorruptShardError(f'{path}: has no proposals dict; {fix}')
    for key, array in proposals.items():
        try:
            key_video, _ = parse_frame_key(key)
        except (ValueError, AttributeError) as exc:
            raise CorruptShardError(f'{path}: {exc}; {fix}') from exc
        if key_video != video:
            raise CorruptShardError(f'{path}: frame key {key!r} belongs to another video; {fix}')
        if (
            not isinstance(array, np.ndarray)
            or array.dtype != np.float32
            or array.ndim != 2
            or array.shape[1] != PROPOSAL_COLUMNS
        ):
            shape = getattr(array, 'shape', None)
            raise CorruptShardError(
                f'{path}: proposals[{key!r}] is not a float32 (n, 5) array (shape {shape}); {fix}'
            )
    return proposals


def merge_shards(shard_dir: str, videos: Sequence[str], settings: Mapping) -> Dict[str, np.ndarray]:
    """Merge the shards of ``videos`` into one proposal dict, in the given video order.

    Raises:
        FileNotFoundError: a video has no shard (naming it and the path).
        CorruptShardError, ShardSettingsMismatch: see :func:`read_shard`.
    """
    merged: Dict[str, np.ndarray] = OrderedDict()
    for video in videos:
        path = shard_path(shard_dir, video)
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'{path}: no shard for video {video!r}; run the generation again to compute it'
            )
        merged.update(read_shard(path, video, settings))
    return merged


def remove_stale_temporaries(path: str) -> int:
    """Delete the temporary files a killed write of shard ``path`` left behind.

    :func:`~pcca_plugin.utils.pickle_io.dump_pickle` writes
    ``.<name><random>.tmp`` next to the destination and removes it on any
    exception, but not when the process is killed. Returns how many were removed.
    """
    folder, name = osp.split(path)
    if not osp.isdir(folder):
        return 0
    stale = [
        entry
        for entry in os.listdir(folder)
        if entry.startswith('.' + name) and entry.endswith('.tmp')
    ]
    for entry in stale:
        os.remove(osp.join(folder, entry))
    return len(stale)
