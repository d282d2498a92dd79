"""Facts about the MultiSports file formats shared by data, proposals and evaluation.

Source: the MultiSports dataset release (Li et al., ICCV 2021) and its
official evaluation tool.

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
#: GT keys frame-mAP and video-mAP read (the official evaluation never reads ``train_videos``).
EVALUATION_GT_KEYS: Tuple[str, ...] = ('labels', 'test_videos', 'nframes', 'resolution', 'gttubes')
#: GT keys preparing the training data (train and val annotation files) reads.
TRAINING_PREPARATION_GT_KEYS: Tuple[str, ...] = EVALUATION_GT_KEYS + ('train_videos',)
#: Keys of a wrong file listed at most in the message of :func:`check_gt_keys`.
_KEYS_SHOWN = 10


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


def check_gt_keys(
    gt: Dict,
    source: str,
    required: Sequence[str] = GT_KEYS,
    step: str = 'reading a MultiSports GT file',
) -> None:
    """Check that a GT dict has the keys one step reads.

    Each step asks only for what it uses, so a file without ``train_videos``
    (which the official evaluation never reads) still evaluates.

    Args:
        gt: the loaded GT pickle.
        source: its file name, for the message.
        required: the keys the step reads, e.g. :data:`EVALUATION_GT_KEYS`.
        step: what needs them, e.g. ``'frame-mAP / video-mAP evaluation'``.

    Raises:
        TypeError: ``gt`` is not a dict (names the file).
        KeyError: a key is missing; names the key, the file and the step.
    """
    if not isinstance(gt, dict):
        raise TypeError(
            f'{source}: a MultiSports GT file holds a dict, found {type(gt).__name__}; is this '
            'a detection file given in place of the GT?'
        )
    missing = [key for key in required if key not in gt]
    if missing:
        present = sorted(map(str, gt))
        shown = present[:_KEYS_SHOWN] + (['...'] if len(present) > _KEYS_SHOWN else [])
        raise KeyError(
            f'{source}: MultiSports GT is missing the keys {missing}, which {step} needs '
            f'(it reads {list(required)}; the file has {shown}); give a GT file of the '
            'MultiSports release layout (docs/protocol.md) or add the keys'
        )
