"""Loading transforms for MultiSports-format detection data.

mmaction2 offers ``RawFrameDecode`` and ``DecordDecode`` for clips with boxes;
both turn normalised ``gt_bboxes``/``proposals`` into pixels. Its
``OpenCVDecode`` does not scale the boxes (they would stay normalised, silently)
and walks back over unreadable frames. :class:`OpenCVDecodeClip` is the
OpenCV path for videos when decord is not available: it seeks to the first
needed frame, reads forward to the last one, scales the boxes like the other
decoders and raises an error that names the video when it cannot be read.
"""

from typing import Dict, List

import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform

#: Columns of a box: x1, y1, x2, y2 (scaled by width, height, width, height).
BOX_SCALE_ORDER = ('w', 'h', 'w', 'h')


def scale_boxes_to_pixels(results: Dict, height: int, width: int) -> None:
    """Multiply normalised ``gt_bboxes`` and ``proposals`` ``(N, 4)`` by the frame size."""
    sizes = dict(w=width, h=height)
    scale = np.array([sizes[k] for k in BOX_SCALE_ORDER], dtype=np.float32)
    for key in ('gt_bboxes', 'proposals'):
        if results.get(key) is not None:
            results[key] = (np.asarray(results[key], np.float32) * scale).astype(np.float32)


@TRANSFORMS.register_module()
class OpenCVDecodeClip(BaseTransform):
    """Decode ``frame_inds`` (0-based) of ``filename`` with OpenCV, as RGB.

    Required keys: ``filename``, ``frame_inds``. Added keys: ``imgs`` (list of
    ``(H, W, 3)`` uint8), ``img_shape``, ``original_shape``. Modified keys:
    ``gt_bboxes``, ``proposals`` (normalised -> pixels).

    Raises:
        OSError: the video cannot be opened, or ends before a needed frame;
            the message names the file and the frame.
    """

    def transform(self, results: Dict) -> Dict:
        import cv2

        path = results['filename']
        frame_inds = np.asarray(results['frame_inds']).reshape(-1)  # (T,)
        wanted = sorted({int(i) for i in frame_inds})
        capture = cv2.VideoCapture(path)
        if not capture.isOpened():
            raise OSError(
                f'{path}: OpenCV cannot open this video (missing, corrupt or an '
                'unsupported codec); re-encode it or extract raw frames'
            )
        decoded: Dict[int, np.ndarray] = {}
        try:
            capture.set(cv2.CAP_PROP_POS_FRAMES, wanted[0])
            index = wanted[0]
            while index <= wanted[-1]:
                ok, frame = capture.read()
                if not ok:
                    raise OSError(
                        f'{path}: cannot decode frame {index} (0-based); the video '
                        'is truncated or has fewer frames than the annotation says'
                    )
                if index in wanted:
                    decoded[index] = frame[:, :, ::-1]  # BGR -> RGB
                index += 1
        finally:
            capture.release()
        imgs: List[np.ndarray] = [np.ascontiguousarray(decoded[int(i)]) for i in frame_inds]
        height, width = imgs[0].shape[:2]
        results['imgs'] = imgs
        results['original_shape'] = (height, width)
        results['img_shape'] = (height, width)
        scale_boxes_to_pixels(results, height, width)
        return results
