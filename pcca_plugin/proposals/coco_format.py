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
returned statistics).
"""

from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np

from ..utils.multisports_format import FIRST_FRAME, check_gt_keys
from .ground_truth import PERSON_BOX_GT_KEYS, frame_person_boxes, video_resolution

#: The only category of the person detector.
PERSON_CATEGORY = {'id': 1, 'name': 'person', 'supercategory': 'person'}
#: Frame file names inside a video's frame folder (mmaction2's MultiSports layout).
DEFAULT_FILENAME_TMPL = 'img_{:05d}.jpg'


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
