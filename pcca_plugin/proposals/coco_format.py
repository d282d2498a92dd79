"""MultiSports ground truth -> COCO person annotations, one image per annotated frame.

mmdet trains and evaluates detectors on COCO-format json with its stock
``CocoDataset`` and ``CocoMetric``. MultiSports has no detection annotations of
its own, but every box of every action tube is a person box, so an annotated
frame becomes a COCO image whose annotations are the (de-duplicated) boxes of
the tubes passing through it. Images point at extracted frames
(``<video_name>/img_00001.jpg``, the layout mmaction2 uses for MultiSports
raw frames).

COCO ``bbox`` is ``[x, y, width, height]`` in pixels; boxes are clipped to
the image and boxes with no area after clipping are dropped (counted in the
returned statistics). :func:`write_coco_files` writes the json files of the
GT's splits (``tools/data/multisports/to_coco.py``).
"""

import json
import os
import os.path as osp
from typing import Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from ..utils.multisports_format import FIRST_FRAME, check_gt_keys
from ..utils.pickle_io import load_pickle
from .ground_truth import PERSON_BOX_GT_KEYS, frame_person_boxes, split_videos, video_resolution

#: The only category of the person detector.
PERSON_CATEGORY = {'id': 1, 'name': 'person', 'supercategory': 'person'}
#: Frame file names inside a video's frame folder (mmaction2's MultiSports layout).
DEFAULT_FILENAME_TMPL = 'img_{:05d}.jpg'
#: Splits written by :func:`write_coco_files` (``val`` = the GT's ``test_videos``).
COCO_SPLITS = ('train', 'val')
#: Json file names: ``<prefix>_<split>.json``.
DEFAULT_COCO_PREFIX = 'multisports_person'


class CocoFile(NamedTuple):
    """A json file of :func:`write_coco_files` and its counts (:func:`multisports_to_coco`)."""

    path: str
    stats: Dict[str, int]


def multisports_to_coco(
    gt: Mapping,
    videos: Sequence[str],
    filename_tmpl: str = DEFAULT_FILENAME_TMPL,
    frame_interval: int = 1,
    source: str = 'GT',
) -> Tuple[Dict, Dict[str, int]]:
    """Build a COCO detection dict (category ``person``) from MultiSports GT.

    Args:
        gt: MultiSports GT dict (``docs/protocol.md``).
        videos: videos to convert, in output order.
        filename_tmpl: frame file name inside ``<video_name>/``, formatted
            with the 1-based frame number.
        frame_interval: keep annotated frames whose number ``f`` satisfies
            ``(f - 1) % frame_interval == 0`` (1 keeps all).
        source: file name for error messages.

    Returns:
        ``(coco, stats)``: the COCO dict (``images``, ``annotations``,
        ``categories``) and counts ``videos``, ``images``, ``annotations``,
        ``dropped_empty_boxes``.
    """
    check_gt_keys(gt, source, PERSON_BOX_GT_KEYS, 'COCO conversion')
    if frame_interval < 1:
        raise ValueError(f'frame_interval must be >= 1, got {frame_interval}')
    images: List[Dict] = []
    annotations: List[Dict] = []
    dropped = 0
    for video in videos:
        height, width = video_resolution(gt, video, source)
        for frame, boxes in frame_person_boxes(gt, video, source).items():
            if (frame - FIRST_FRAME) % frame_interval:
                continue
            image_id = len(images) + 1
            images.append(
                {
                    'id': image_id,
                    'file_name': f'{video}/{filename_tmpl.format(frame)}',
                    'width': width,
                    'height': height,
                    'video': video,
                    'frame': frame,
                }
            )
            clipped = np.clip(boxes, 0, [width, height, width, height])  # (G, 4)
            box_w = clipped[:, 2] - clipped[:, 0]
            box_h = clipped[:, 3] - clipped[:, 1]
            for (x1, y1, _, _), w, h in zip(clipped, box_w, box_h):
                if w <= 0 or h <= 0:
                    dropped += 1
                    continue
                annotations.append(
                    {
                        'id': len(annotations) + 1,
                        'image_id': image_id,
                        'category_id': PERSON_CATEGORY['id'],
                        'bbox': [float(x1), float(y1), float(w), float(h)],
                        'area': float(w * h),
                        'iscrowd': 0,
                    }
                )
    coco = {
        'info': {'description': f'MultiSports person boxes from {source}'},
        'images': images,
        'annotations': annotations,
        'categories': [dict(PERSON_CATEGORY)],
    }
    stats = {
        'videos': len(videos),
        'images': len(images),
        'annotations': len(annotations),
        'dropped_empty_boxes': dropped,
    }
    return coco, stats


def check_images(coco: Mapping, frame_root: str, json_path: str) -> None:
    """Raise FileNotFoundError naming the first missing frame and how many are missing."""
    missing = [
        image['file_name']
        for image in coco['images']
        if not osp.isfile(osp.join(frame_root, image['file_name']))
    ]
    if missing:
        raise FileNotFoundError(
            f'{json_path}: {len(missing)} of {len(coco["images"])} frames are missing under '
            f'{frame_root}, e.g. {osp.join(frame_root, missing[0])}; extract the frames '
            '(img_00001.jpg, ...) or fix --frame-root / --filename-tmpl'
        )


def write_coco_files(
    gt_file: str,
    out_dir: str,
    prefix: str = DEFAULT_COCO_PREFIX,
    splits: Sequence[str] = COCO_SPLITS,
    frame_interval: int = 1,
    filename_tmpl: str = DEFAULT_FILENAME_TMPL,
    frame_root: Optional[str] = None,
) -> Dict[str, CocoFile]:
    """Write ``<out_dir>/<prefix>_<split>.json`` for every split of a MultiSports GT file.

    Args:
        gt_file: the MultiSports GT pickle.
        out_dir: folder of the json files (created).
        prefix: json file name prefix.
        splits: splits of :data:`COCO_SPLITS` to write, in order.
        frame_interval, filename_tmpl: see :func:`multisports_to_coco`.
        frame_root: when given, every image must exist under it (else
            ``FileNotFoundError`` and no json of that split).

    Returns:
        ``{split: CocoFile(path, stats)}`` in the order of ``splits``.
    """
    gt = load_pickle(gt_file)
    os.makedirs(out_dir, exist_ok=True)
    written = {}
    for split in splits:
        videos = split_videos(gt, split, gt_file)
        coco, stats = multisports_to_coco(
            gt, videos, filename_tmpl=filename_tmpl, frame_interval=frame_interval, source=gt_file
        )
        path = osp.join(out_dir, f'{prefix}_{split}.json')
        if frame_root is not None:
            check_images(coco, frame_root, path)
        tmp = path + '.tmp'
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump(coco, f)
        os.replace(tmp, path)
        written[split] = CocoFile(path, stats)
    return written
