"""Facts about the MultiSports file formats shared by data, proposals and evaluation.

Source: the MultiSports dataset release (Li et al., ICCV 2021) and
``shared/docs/multisports_protocol.md``.

Keys of per-frame files (person boxes, proposals) are ``'<video_name>,<frame>'``
with the 1-based frame number zero-padded to :data:`FRAME_KEY_DIGITS` digits,
e.g. ``'aerobic_gymnastics/v_crsi07chcV8_c004,0017'``; this is also what
mmaction2's ``AVADataset`` builds for MultiSports (``timestamp_start=1``).
"""

from typing import Dict, List, Sequence, Tuple

#: Digits of the zero-padded frame number in a frame key.
FRAME_KEY_DIGITS = 4
#: Separator between video name and frame number in a frame key.
FRAME_KEY_SEPARATOR = ','
#: The first frame of a video is numbered 1.
FIRST_FRAME = 1

#: Classes the MultiSports challenge does not evaluate (absent or too rare).
EXCLUDED_CLASS_NAMES: Tuple[str, ...] = (
    'aerobic kick jump',
    'aerobic off axis jump',
    'aerobic butterfly jump',
    'aerobic balance turn',
    'basketball save',
    'basketball jump ball',
)

#: Keys every MultiSports ground-truth pickle has.
GT_KEYS: Tuple[str, ...] = (
    'labels',
    'train_videos',
    'test_videos',
    'nframes',
    'resolution',
    'gttubes',
)


def frame_key(video: str, frame: int) -> str:
    """``('basketball/v_x_c001', 7)`` -> ``'basketball/v_x_c001,0007'``."""
    return f'{video}{FRAME_KEY_SEPARATOR}{int(frame):0{FRAME_KEY_DIGITS}d}'


def parse_frame_key(key: str) -> Tuple[str, int]:
    """Inverse of :func:`frame_key`; raises ValueError naming the malformed key."""
    video, sep, frame = key.rpartition(FRAME_KEY_SEPARATOR)
    if not sep or not video or not frame.isdigit():
        raise ValueError(f"malformed frame key {key!r}: expected '<video_name>,<frame number>'")
    return video, int(frame)


def evaluated_label_indices(
    labels: Sequence[str], excluded: Sequence[str] = EXCLUDED_CLASS_NAMES
) -> List[int]:
    """Indices of the classes the challenge evaluates (60 of MultiSports' 66)."""
    excluded_set = set(excluded)
    return [index for index, name in enumerate(labels) if name not in excluded_set]


def check_gt_keys(gt: Dict, source: str) -> None:
    """Raise KeyError naming the file and the missing keys of a GT dict."""
    if not isinstance(gt, dict):
        raise TypeError(f'{source}: a MultiSports GT file holds a dict, found {type(gt).__name__}')
    missing = [key for key in GT_KEYS if key not in gt]
    if missing:
        raise KeyError(
            f'{source}: MultiSports GT is missing the keys {missing} '
            f'(a GT file has {list(GT_KEYS)})'
        )
