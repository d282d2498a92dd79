"""Generate *toy-sports*: a tiny, seeded spatio-temporal action dataset in MultiSports format.

Every video shows a few identical players on a plain field. A player is a
person box of fixed size (head, jersey, legs) and, during an action tube, it
either *moves* in a class-specific way or has a class-specific coloured ball
above its head, outside its person box but inside the 2x extended box that
PCCA attends to (paper, section 2.2). The classes (:data:`TOY_CLASSES`):

============================ ======= =======================================
class                        kind    what tells it apart
============================ ======= =======================================
run left / run right         motion  the box moves left / right
jump                         motion  the box bounces up and down
carry red / blue ball        context a red / blue ball above the head
jump with red ball (tail)    context jumps with a red ball above the head
carry red and blue (tail)    context a red and a blue ball above the head
============================ ======= =======================================

The person-box content of a context-class player is pixel-identical to that
of an idle player (same figure, standing still): only the context tells them
apart. Tail classes have far fewer and shorter tubes in the training split
(about 30x fewer boxes); the validation split keeps a few of them so that
their AP can be measured.

Outputs under ``out_dir`` (see ``docs/data.md``): ``toy_sports_GT.pkl``,
``videos/toysport/v_XXXX.mp4``, ``rawframes/toysport/v_XXXX/img_00001.jpg``,
``proposals/toy_sports_dense_proposals_{train,val}.pkl`` (jittered GT boxes,
missed players, false positives, with scores), ``toy_sports_classes.json`` and,
made by the MultiSports preparation code, ``annotations/``.

The command line is ``tools/data/make_toy_sports.py``::

    python tools/data/make_toy_sports.py data/toy_sports --seed 0

(moved here from that script; the same seed gives the same bytes as before).
"""

import json
import os
import os.path as osp
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple, Union

import cv2
import numpy as np

from pcca_plugin.utils.multisports_format import frame_key
from pcca_plugin.utils.pickle_io import dump_pickle, load_pickle

from .preparation import prepare_multisports

#: Classes in label-index order: (name, kind, is_tail).
TOY_CLASSES: Tuple[Tuple[str, str, bool], ...] = (
    ('run left', 'motion', False),
    ('run right', 'motion', False),
    ('jump', 'motion', False),
    ('carry red ball', 'context', False),
    ('carry blue ball', 'context', False),
    ('jump with red ball', 'context', True),
    ('carry red and blue ball', 'context', True),
)
#: Ball colour (BGR, saturated) of each context class.
BALL_COLOURS = {
    'carry red ball': (0, 0, 255),
    'carry blue ball': (255, 0, 0),
}
#: Balls of each context class, left to right above the head. Each tail class combines
#: parts that head classes teach: 'jump with red ball' is a jumper (a motion head class)
#: with the red ball of 'carry red ball'; 'carry red and blue ball' shows both head-class
#: balls. The features a tail class needs are learned from the head classes; what the
#: tail class lacks is training samples (and each is a combination: a red-ball carrier
#: and a plain jumper are both negatives of 'jump with red ball').
CLASS_BALLS = {
    'carry red ball': ('carry red ball',),
    'carry blue ball': ('carry blue ball',),
    'jump with red ball': ('carry red ball',),
    'carry red and blue ball': ('carry red ball', 'carry blue ball'),
}
#: Classes whose player bounces (one hop per ``jump_period`` frames).
JUMPING_CLASSES = ('jump', 'jump with red ball')
#: The player figure (BGR): identical for every player and class.
HEAD_COLOUR = (150, 190, 240)
JERSEY_COLOUR = (255, 255, 255)
LEGS_COLOUR = (40, 40, 40)
#: Sport folder of every video name (MultiSports names are '<sport>/<video>').
SPORT = 'toysport'
GT_NAME = 'toy_sports_GT.pkl'
DATASET_NAME = 'toy_sports'
#: Name of the clip-level pretraining annotations (see :func:`write_clip_level_annotations`).
CLIPS_DATASET_NAME = f'{DATASET_NAME}_clips'
#: The one box of a clip-level sample: the whole frame (normalised x1, y1, x2, y2).
WHOLE_FRAME_BOX = (0.0, 0.0, 1.0, 1.0)
VIDEO_FPS = 25
JPEG_QUALITY = 95


@dataclass
class ToySportsSizes:
    """Sizes of the toy dataset (defaults sized for a CPU, generated in seconds).

    Geometry is in pixels. A player's 2x extended box is ``2 * person_height``
    by ``2 * person_width``; the ball sits ``ball_gap`` above the head, inside it.
    """

    num_train_videos: int = 20
    num_val_videos: int = 10
    num_frames: int = 24
    players_per_video: int = 3
    height: int = 96
    width: int = 192
    person_height: int = 28
    person_width: int = 14
    ball_radius: int = 5
    ball_gap: int = 3
    #: Head-class tube lengths (inclusive range) and tail-class tube lengths, either
    #: one range or one per split (``dict(train=..., val=...)``).
    head_tube_len: Tuple[int, int] = (14, 18)
    tail_tube_len: Union[Tuple[int, int], Dict[str, Tuple[int, int]]] = (4, 6)
    #: Tail tubes per split; head classes share the other slots equally.
    tail_tubes: Dict[str, int] = field(default_factory=lambda: dict(train=1, val=2))
    #: Fraction of player slots left idle (a person without action).
    idle_fraction: float = 0.15
    run_speed: int = 2
    jump_height: int = 10
    jump_period: int = 6
    #: Probability that a standing player (not a runner) has a *distractor* ball
    #: of a random context colour lying beside it, outside its 2x box (at least
    #: ``distractor_margin`` pixels beyond it, one feature cell at stride 8). The
    #: ball is in the receptive field of the person's features but not in its
    #: context: only the 2x box decides a context class, so a head must look at
    #: the right place, not at colours anywhere nearby (docs/data.md, section 3.2).
    distractor_rate: float = 0.5
    distractor_margin: int = 8
    #: Proposal simulation: std of the box jitter (fraction of the box size), the
    #: probability that a player is missed, the score range of true detections,
    #: the mean number of false positives per frame and their score range.
    jitter: float = 0.05
    miss_rate: float = 0.05
    true_score: Tuple[float, float] = (0.7, 1.0)
    false_positives_per_frame: float = 0.4
    false_score: Tuple[float, float] = (0.05, 0.8)
    background_noise: float = 6.0


def _tube_plan(
    sizes: ToySportsSizes, split: str, num_videos: int, rng: np.random.Generator
) -> List[Optional[int]]:
    """Label (or None for idle) of every player slot of a split, shuffled."""
    slots = num_videos * sizes.players_per_video
    tail_labels = [i for i, (_, _, tail) in enumerate(TOY_CLASSES) if tail]
    head_labels = [i for i, (_, _, tail) in enumerate(TOY_CLASSES) if not tail]
    plan: List[Optional[int]] = []
    for label in tail_labels:
        plan += [label] * sizes.tail_tubes[split]
    per_head = int((slots - len(plan)) * (1 - sizes.idle_fraction)) // len(head_labels)
    for label in head_labels:
        plan += [label] * per_head
    if len(plan) > slots:
        raise ValueError(
            f'{split}: {len(plan)} tubes do not fit in {slots} player slots; add videos or players'
        )
    plan += [None] * (slots - len(plan))
    order = rng.permutation(slots)
    return [plan[i] for i in order]


def tube_length_range(sizes: ToySportsSizes, label: int, split: str) -> Tuple[int, int]:
    """Inclusive range of tube lengths of class ``label`` in ``split`` (``'train'`` / ``'val'``).

    Head classes use ``sizes.head_tube_len``; tail classes ``sizes.tail_tube_len``,
    one range or one per split.
    """
    if not TOY_CLASSES[label][2]:
        return tuple(sizes.head_tube_len)
    lengths = sizes.tail_tube_len
    return tuple(lengths[split]) if isinstance(lengths, dict) else tuple(lengths)


def _player_track(
    sizes: ToySportsSizes,
    label: Optional[int],
    cell: Tuple[int, int],
    rng: np.random.Generator,
    split: str = 'train',
) -> Tuple[np.ndarray, Optional[Tuple[int, int]]]:
    """Top-left corners ``(T, 2)`` of one player over the video and its tube (start, end).

    The player stays in its column ``cell = (left, right)`` so that the 2x boxes
    of neighbours do not overlap.
    """
    num_frames = sizes.num_frames
    half_ctx_w = sizes.person_width  # half the width of the 2x box
    centre_lo, centre_hi = cell[0] + half_ctx_w, cell[1] - half_ctx_w
    top_lo = sizes.jump_height + sizes.person_height // 2  # 2x box and ball stay visible
    top_hi = sizes.height - sizes.person_height - sizes.person_height // 2
    top = int(rng.integers(top_lo, top_hi + 1))
    tube = None
    name = TOY_CLASSES[label][0] if label is not None else None
    if label is not None:
        lo, hi = tube_length_range(sizes, label, split)
        length = int(rng.integers(lo, hi + 1))
        start = int(rng.integers(1, num_frames - length + 2))
        tube = (start, start + length - 1)
    centre = float(rng.integers(centre_lo, centre_hi + 1))
    if name in ('run left', 'run right'):
        travel = sizes.run_speed * (tube[1] - tube[0])
        if travel > centre_hi - centre_lo:
            raise ValueError(
                'run_speed x tube length exceeds the player column; widen the '
                'frame or shorten head_tube_len'
            )
        centre = centre_lo if name == 'run right' else centre_hi
    xs = np.full(num_frames, centre)
    ys = np.full(num_frames, float(top))
    if tube is not None:
        t = np.arange(num_frames) + 1
        in_tube = (t >= tube[0]) & (t <= tube[1])
        elapsed = np.clip(t - tube[0], 0, tube[1] - tube[0])
        if name == 'run right':
            xs = centre + sizes.run_speed * elapsed
        elif name == 'run left':
            xs = centre - sizes.run_speed * elapsed
        elif name in JUMPING_CLASSES:
            phase = np.pi * elapsed / sizes.jump_period  # one hop per jump_period frames
            ys = ys - in_tube * sizes.jump_height * np.abs(np.sin(phase))
    corners = np.stack([np.round(xs - sizes.person_width / 2), np.round(ys)], axis=1)  # (T, 2)
    return corners.astype(np.int64), tube


def _draw_player(frame: np.ndarray, x1: int, y1: int, sizes: ToySportsSizes) -> None:
    """Draw the figure filling the person box ``[x1, y1, x1 + w, y1 + h)``."""
    h, w = sizes.person_height, sizes.person_width
    head = h // 4
    legs = h // 3
    frame[y1 : y1 + head, x1 + w // 4 : x1 + w - w // 4] = HEAD_COLOUR
    frame[y1 + head : y1 + h - legs, x1 : x1 + w] = JERSEY_COLOUR
    frame[y1 + h - legs : y1 + h, x1 + 1 : x1 + w // 2 - 1] = LEGS_COLOUR
    frame[y1 + h - legs : y1 + h, x1 + w // 2 + 1 : x1 + w - 1] = LEGS_COLOUR


def _draw_balls(frame: np.ndarray, x1: int, y1: int, name: str, sizes: ToySportsSizes) -> None:
    """Draw the ball(s) of context class ``name`` above the head, side by side, touching."""
    balls = CLASS_BALLS[name]
    spacing = 2 * sizes.ball_radius + 1
    centre_y = y1 - sizes.ball_gap - sizes.ball_radius
    for index, ball in enumerate(balls):
        offset = (index - (len(balls) - 1) / 2) * spacing
        centre = (int(round(x1 + sizes.person_width / 2 + offset)), centre_y)
        cv2.circle(frame, centre, sizes.ball_radius, BALL_COLOURS[ball], thickness=-1)


def _proposals(boxes: np.ndarray, sizes: ToySportsSizes, rng: np.random.Generator) -> np.ndarray:
    """Simulated detector output for one frame: normalised float32 ``(n, 5)``, by score."""
    scale = np.array([sizes.width, sizes.height, sizes.width, sizes.height], dtype=np.float64)
    rows = []
    for box in boxes:
        if rng.random() < sizes.miss_rate:
            continue
        wh = np.array([box[2] - box[0], box[3] - box[1]] * 2, dtype=np.float64)
        jittered = box + rng.normal(0, sizes.jitter, 4) * wh
        rows.append([*jittered, rng.uniform(*sizes.true_score)])
    for _ in range(rng.poisson(sizes.false_positives_per_frame)):
        w = sizes.person_width * rng.uniform(0.7, 1.5)
        h = sizes.person_height * rng.uniform(0.7, 1.5)
        x1 = rng.uniform(0, sizes.width - w)
        y1 = rng.uniform(0, sizes.height - h)
        rows.append([x1, y1, x1 + w, y1 + h, rng.uniform(*sizes.false_score)])
    if not rows:
        return np.zeros((0, 5), dtype=np.float32)
    array = np.array(rows, dtype=np.float64)
    array[:, :4] = np.clip(array[:, :4] / scale, 0, 1)
    array = array[np.argsort(-array[:, 4], kind='stable')]
    return array.astype(np.float32)


def _distractor_centre(
    sizes: ToySportsSizes, corners: np.ndarray, cell: Tuple[int, int]
) -> Optional[Tuple[int, int]]:
    """Centre of a ball beside a standing player, outside its 2x box at every frame.

    The ball goes on the side of the player's column with more room and stays
    inside the column (so it is outside the neighbours' 2x boxes too); None
    when it does not fit.
    """
    xs = corners[:, 0]  # (T,) left edges
    left, right = int(xs.min()), int(xs.max()) + sizes.person_width
    # The 2x box reaches half a person width beyond each side of the box.
    reach = sizes.person_width // 2 + sizes.ball_radius + sizes.distractor_margin
    if cell[1] - right >= left - cell[0]:
        centre_x = right + reach
        fits = centre_x + sizes.ball_radius <= cell[1]
    else:
        centre_x = left - reach
        fits = centre_x - sizes.ball_radius >= cell[0]
    centre_y = int(corners[0, 1]) + sizes.person_height // 2
    return (int(centre_x), centre_y) if fits else None


def render_video(
    sizes: ToySportsSizes,
    labels: List[Optional[int]],
    rng: np.random.Generator,
    split: str = 'train',
) -> Tuple[np.ndarray, Dict[int, List[np.ndarray]], np.ndarray]:
    """Draw one video of ``len(labels)`` players, one per column of the frame.

    Args:
        sizes: the geometry, motion and noise settings.
        labels: the class index of each player (None: idle), left to right.
        rng: the generator every random choice draws from, in a fixed order.
        split: ``'train'`` or ``'val'`` (the tail classes' tube lengths depend on it).

    Returns:
        ``frames`` (``uint8[T, H, W, 3]``, BGR), ``tubes`` (label ->
        list of ``float32[L, 5]`` GT tubes, rows ``(frame from 1, x1, y1, x2, y2)``
        in pixels) and ``person_boxes`` (``float64[T, P, 4]``, every player's box
        in every frame, idle players included).
    """
    num_players = len(labels)
    cell_w = sizes.width / num_players
    tint = rng.integers(-20, 21, size=3)
    field_colour = np.clip(np.array([60, 140, 60]) + tint, 0, 255)
    background = np.clip(
        field_colour + rng.normal(0, sizes.background_noise, (sizes.height, sizes.width, 3)), 0, 255
    )
    background = background.astype(np.uint8)  # (H, W, 3)
    tracks = []
    tubes: Dict[int, List[np.ndarray]] = {}
    distractor_colours = list(BALL_COLOURS.values())
    for index, label in enumerate(labels):
        cell = (int(round(index * cell_w)), int(round((index + 1) * cell_w)))
        corners, tube = _player_track(sizes, label, cell, rng, split)
        tracks.append((corners, tube, label))
        name = TOY_CLASSES[label][0] if label is not None else None
        if name not in ('run left', 'run right') and rng.random() < sizes.distractor_rate:
            centre = _distractor_centre(sizes, corners, cell)
            colour = distractor_colours[int(rng.integers(len(distractor_colours)))]
            if centre is not None:  # lies on the field for the whole video
                cv2.circle(background, centre, sizes.ball_radius, colour, thickness=-1)
        if tube is not None:
            frames = np.arange(tube[0], tube[1] + 1)
            xy = corners[frames - 1].astype(np.float32)  # (L, 2)
            boxes = np.concatenate([xy, xy + [sizes.person_width, sizes.person_height]], 1)
            tubes.setdefault(label, []).append(
                np.concatenate([frames[:, None].astype(np.float32), boxes], 1)
            )  # (L, 5)
    frames = np.repeat(background[None], sizes.num_frames, axis=0)  # (T, H, W, 3)
    person_boxes = np.zeros((sizes.num_frames, num_players, 4), dtype=np.float64)
    for t in range(sizes.num_frames):
        for player, (corners, tube, label) in enumerate(tracks):
            x1, y1 = (int(v) for v in corners[t])
            _draw_player(frames[t], x1, y1, sizes)
            person_boxes[t, player] = [x1, y1, x1 + sizes.person_width, y1 + sizes.person_height]
            name = TOY_CLASSES[label][0] if label is not None else None
            if name in CLASS_BALLS and tube[0] <= t + 1 <= tube[1]:
                _draw_balls(frames[t], x1, y1, name, sizes)
    return frames, tubes, person_boxes


def make_toy_sports(out_dir: str, seed: int = 0, prepare: bool = True, **sizes) -> Dict:
    """Write the toy-sports dataset under ``out_dir``; return a summary dict.

    Args:
        out_dir: output folder (created; existing files are overwritten).
        seed: the only source of randomness: same seed, same bytes of the GT
            and proposal pickles.
        prepare: also run the MultiSports preparation (writes ``annotations/``).
        **sizes: fields of :class:`ToySportsSizes` to override.

    Returns:
        ``dict(gt_file, proposal_files, annotation_files, num_videos, num_frames,
        seconds)``.
    """
    start_time = time.time()
    config = ToySportsSizes(**sizes)
    rng = np.random.default_rng(seed)
    gt = dict(
        labels=[name for name, _, _ in TOY_CLASSES],
        train_videos=[[]],
        test_videos=[[]],
        nframes={},
        resolution={},
        gttubes={},
    )
    proposals = dict(train={}, val={})
    counts = dict(train=config.num_train_videos, val=config.num_val_videos)
    video_index = 0
    for split, num_videos in counts.items():
        plan = _tube_plan(config, split, num_videos, rng)
        for v in range(num_videos):
            name = f'{SPORT}/v_{video_index:04d}'
            video_index += 1
            labels = plan[v * config.players_per_video : (v + 1) * config.players_per_video]
            frames, tubes, person_boxes = render_video(config, labels, rng, split)
            (gt['train_videos'] if split == 'train' else gt['test_videos'])[0].append(name)
            gt['nframes'][name] = config.num_frames
            gt['resolution'][name] = (config.height, config.width)
            gt['gttubes'][name] = tubes
            _write_media(out_dir, name, frames)
            for t in range(config.num_frames):
                proposals[split][frame_key(name, t + 1)] = _proposals(person_boxes[t], config, rng)
    gt_file = osp.join(out_dir, GT_NAME)
    dump_pickle(gt, gt_file)
    proposal_files = []
    for split, boxes in proposals.items():
        path = osp.join(out_dir, 'proposals', f'{DATASET_NAME}_dense_proposals_{split}.pkl')
        dump_pickle(boxes, path)
        proposal_files.append(path)
    with open(osp.join(out_dir, f'{DATASET_NAME}_classes.json'), 'w') as f:
        json.dump(
            [dict(index=i, name=n, kind=k, tail=t) for i, (n, k, t) in enumerate(TOY_CLASSES)],
            f,
            indent=1,
        )
    annotation_files = {}
    if prepare:
        annotation_files = prepare_multisports(
            gt_file, proposal_files, osp.join(out_dir, 'annotations'), name=DATASET_NAME
        )
    return dict(
        gt_file=gt_file,
        proposal_files=proposal_files,
        annotation_files=annotation_files,
        num_videos=video_index,
        num_frames=video_index * config.num_frames,
        seconds=time.time() - start_time,
    )


def _write_media(out_dir: str, name: str, frames: np.ndarray) -> None:
    """``videos/<name>.mp4`` (OpenCV, mp4v) and ``rawframes/<name>/img_00001.jpg ...``."""
    video_path = osp.join(out_dir, 'videos', name + '.mp4')
    frame_dir = osp.join(out_dir, 'rawframes', name)
    os.makedirs(osp.dirname(video_path), exist_ok=True)
    os.makedirs(frame_dir, exist_ok=True)
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(
        video_path, cv2.VideoWriter_fourcc(*'mp4v'), VIDEO_FPS, (width, height)
    )
    if not writer.isOpened():
        raise OSError(f'{video_path}: OpenCV cannot write mp4v videos on this system')
    for index, frame in enumerate(frames):
        writer.write(frame)
        cv2.imwrite(
            osp.join(frame_dir, f'img_{index + 1:05d}.jpg'),
            frame,
            [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY],
        )
    writer.release()


def write_clip_level_annotations(data_root: str, split: str = 'train') -> Dict[str, str]:
    """Turn a split of a toy-sports folder into a *clip-level* classification set.

    Every key frame keeps one box, the whole frame, labelled with the union of
    the actions of all its players (multi-hot), and one proposal, the whole
    frame with score 1. A head on that box pools the whole frame, so training
    on it is clip classification, like the Kinetics pretraining of the paper's
    backbone (section 3.1): the backbone learns what is in a clip, not which
    player does what. The demo pretrains its tiny backbone this way on videos
    of their own (another seed), since no pretrained weights can be downloaded.

    Args:
        data_root: a folder written by :func:`make_toy_sports` (with ``annotations/``).
        split: the split to convert.

    Returns:
        ``dict(ann_file=..., proposal_file=...)``, written under ``annotations/`` as
        ``toy_sports_clips_<split>.pkl`` and ``toy_sports_clips_dense_proposals_<split>.pkl``.
    """
    ann_dir = osp.join(data_root, 'annotations')
    source = osp.join(ann_dir, f'{DATASET_NAME}_{split}.pkl')
    if not osp.isfile(source):
        raise FileNotFoundError(
            f'{source}: no frame annotations to convert; run make_toy_sports(..., prepare=True) '
            'on this folder first'
        )
    annotation = load_pickle(source)
    box = np.array([WHOLE_FRAME_BOX], dtype=np.float32)  # (1, 4)
    proposals = {}
    for key, frame in annotation['annotations'].items():
        frame['labels'] = frame['labels'].max(axis=0, keepdims=True)  # (1, num_classes)
        frame['bboxes'] = box.copy()
        proposals[key] = np.array([[*WHOLE_FRAME_BOX, 1.0]], dtype=np.float32)  # (1, 5)
    outputs = dict(
        ann_file=osp.join(ann_dir, f'{CLIPS_DATASET_NAME}_{split}.pkl'),
        proposal_file=osp.join(ann_dir, f'{CLIPS_DATASET_NAME}_dense_proposals_{split}.pkl'),
    )
    dump_pickle(annotation, outputs['ann_file'])
    dump_pickle(proposals, outputs['proposal_file'])
    return outputs
