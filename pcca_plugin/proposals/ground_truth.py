"""Person boxes and video lists read from a MultiSports ground-truth dict.

Every box of every action tube is a person box, whatever the action class, so
the person ground truth of a frame is the set of boxes of the tubes passing
through it. The same person annotated in two overlapping tubes (two action
classes) would appear twice; exact duplicates are therefore kept once.
"""

from typing import Dict, List, Mapping

import numpy as np

from ..utils.multisports_format import check_gt_keys

#: Output split name -> GT key (MultiSports calls its validation split ``test_videos``).
SPLIT_KEYS = {'train': 'train_videos', 'val': 'test_videos', 'test': 'test_videos'}
#: GT keys that reading person boxes (pixels and normalised) needs.
PERSON_BOX_GT_KEYS = ('resolution', 'gttubes')


def split_videos(gt: Mapping, split: str, source: str = 'GT') -> List[str]:
    """Video names of a split: ``'train'`` or ``'val'``/``'test'`` (``test_videos[0]``).

    Args:
        gt: MultiSports GT dict.
        split: split name.
        source: file name for error messages.
    """
    if split not in SPLIT_KEYS:
        raise ValueError(f'unknown split {split!r}; choose from {sorted(SPLIT_KEYS)}')
    check_gt_keys(gt, source, (SPLIT_KEYS[split],), f'listing the {split} videos')
    entry = gt[SPLIT_KEYS[split]]
    if not entry or not isinstance(entry[0], (list, tuple)):
        raise ValueError(
            f'{source}: {SPLIT_KEYS[split]} must be a one-element list holding the '
            f'list of video names, found {entry!r:.80}'
        )
    return list(entry[0])


def frame_person_boxes(gt: Mapping, video: str, source: str = 'GT') -> Dict[int, np.ndarray]:
    """Pixel person boxes of each annotated frame of one video.

    Args:
        gt: MultiSports GT dict (``docs/protocol.md``).
        video: video name.
        source: file name for error messages.

    Returns:
        frame number -> np.ndarray[G, 4] float64 ``[x1, y1, x2, y2]`` in
        pixels, exact duplicates removed (rows sorted), frames ascending.
    """
    check_gt_keys(gt, source, ('gttubes',), 'reading person boxes')
    if video not in gt['gttubes']:
        raise KeyError(f'{source}: video {video!r} has no entry in gttubes')
    per_frame: Dict[int, List[np.ndarray]] = {}
    for label, tubes in gt['gttubes'][video].items():
        for tube_index, tube in enumerate(tubes):
            tube = np.asarray(tube, dtype=np.float64)
            if tube.ndim != 2 or tube.shape[1] != 5:
                raise ValueError(
                    f'{source}: gttubes[{video!r}][{label}][{tube_index}] has shape '
                    f'{tube.shape}; a tube is (L, 5) [frame, x1, y1, x2, y2]'
                )
            for row in tube:
                per_frame.setdefault(int(row[0]), []).append(row[1:])
    return {frame: np.unique(np.stack(per_frame[frame]), axis=0) for frame in sorted(per_frame)}


def video_resolution(gt: Mapping, video: str, source: str = 'GT') -> tuple:
    """``(height, width)`` of a video as ints; KeyError naming the file otherwise."""
    if video not in gt['resolution']:
        raise KeyError(f'{source}: video {video!r} has no entry in resolution')
    height, width = (int(v) for v in gt['resolution'][video])
    return height, width
