"""An exported action detector in onnxruntime: checked inputs, scores, the video demo's backend.

Shape shorthand: ``T`` frames, ``H x W`` the clip's input size, ``N`` person
boxes, ``K`` classes, ``B`` clips of a demo batch.

:class:`OnnxActionDetector` runs a file of :func:`~.export.export_onnx`
(``clip (1, 3, T, H, W)`` float32, ``boxes (N, 4)`` float32 -> ``scores (N,
K)``) and checks what it is given against the graph's declared inputs, so a
wrong shape or dtype is an error that names the expected one rather than an
onnxruntime message. :class:`OnnxDemoBackend` stands in for the PyTorch
detector in :mod:`pcca_plugin.visualization.video_demo` (``--onnx`` of
``tools/demo/demo_video.py``): the config's data preprocessor (PyTorch)
normalises the clips, onnxruntime scores the boxes.
"""

from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from . import require_deploy
from .export import BOXES_INPUT, CLIP_INPUT, SCORES_OUTPUT

#: Columns of a box: ``x1, y1, x2, y2`` in the clip's pixels.
BOX_COLUMNS = 4
#: The one dtype of the graph's inputs and output.
INPUT_DTYPE = np.float32


class OnnxActionDetector:
    """``clip (1, 3, T, H, W), boxes (N, 4) -> scores (N, K)`` in onnxruntime (CPU).

    Args:
        path (str): the ``.onnx`` file.
        num_classes (int, optional): ``K`` of the config the file is used with;
            a file that scores another number of classes is an error.
        threads (int, optional): onnxruntime's intra-op threads (default: its own).

    Raises:
        ValueError: the file's inputs and outputs are not the exported detector's,
            or it scores another number of classes than ``num_classes``.
    """

    def __init__(
        self, path: str, num_classes: Optional[int] = None, threads: Optional[int] = None
    ) -> None:
        ort = require_deploy('onnxruntime')
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        self.path = path
        self.session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
        inputs = {item.name: item.shape for item in self.session.get_inputs()}
        outputs = {item.name: item.shape for item in self.session.get_outputs()}
        if set(inputs) != {CLIP_INPUT, BOXES_INPUT} or SCORES_OUTPUT not in outputs:
            raise ValueError(
                f'{path}: inputs {sorted(inputs)} and outputs {sorted(outputs)}, expected inputs '
                f"['{BOXES_INPUT}', '{CLIP_INPUT}'] and output '{SCORES_OUTPUT}'; export it with "
                'tools/deployment/export_onnx.py.'
            )
        #: ``(1, 3, T, H, W)``, fixed when the file was exported.
        self.clip_shape: Tuple[int, ...] = tuple(int(s) for s in inputs[CLIP_INPUT])
        #: ``K``.
        self.num_classes = int(outputs[SCORES_OUTPUT][-1])
        if num_classes is not None and num_classes != self.num_classes:
            raise ValueError(
                f'{path} scores {self.num_classes} classes but the config has {num_classes} '
                '(roi_head.bbox_head.num_classes); export the file from this config.'
            )

    def check_inputs(self, clip: np.ndarray, boxes: np.ndarray) -> None:
        """Raise a ``ValueError`` naming the expected shape and dtype when an input differs."""
        expected = {
            CLIP_INPUT: (self.clip_shape, 'the data preprocessor output, NCTHW'),
            BOXES_INPUT: (('N', BOX_COLUMNS), 'x1, y1, x2, y2 in the clip pixels, N >= 1'),
        }
        for name, array in ((CLIP_INPUT, clip), (BOXES_INPUT, boxes)):
            shape, meaning = expected[name]
            given = tuple(getattr(array, 'shape', ()))
            fits = len(given) == len(shape) and all(
                size == want or (want == 'N' and size >= 1) for size, want in zip(given, shape)
            )
            dtype = getattr(array, 'dtype', type(array).__name__)
            if not fits or dtype != INPUT_DTYPE:
                shape_text = '(' + ', '.join(str(size) for size in shape) + ')'
                raise ValueError(
                    f'{name}: expected a float32 array of shape {shape_text} ({meaning}) for '
                    f'{self.path}, got {type(array).__name__} of shape {given} and dtype {dtype}.'
                )

    def scores(self, clip: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Per-class probabilities of every box.

        Args:
            clip (np.ndarray): ``(1, 3, T, H, W)`` float32, the data preprocessor's output.
            boxes (np.ndarray): ``(N, 4)`` float32 ``(x1, y1, x2, y2)``, clip pixels.

        Returns:
            np.ndarray: ``(N, K)`` float32.
        """
        self.check_inputs(clip, boxes)
        return self.session.run([SCORES_OUTPUT], {CLIP_INPUT: clip, BOXES_INPUT: boxes})[0]


class OnnxDemoBackend:
    """The video demo's action detector, run by onnxruntime.

    Has what :func:`pcca_plugin.visualization.video_demo.predict_batch` needs:
    :meth:`predict_batch` gives, for every clip, the stock AVA prediction
    (boxes normalised to ``[0, 1]`` by ``img_shape``, scores ``(n, K)``); the
    demo's clips are neither flipped nor cropped, so nothing else is undone.

    Args:
        path (str): the ``.onnx`` file.
        cfg (Config): the config it was exported from (data preprocessor,
            ``num_classes``).
    """

    def __init__(self, path: str, cfg) -> None:
        from mmaction.registry import MODELS

        self.data_preprocessor = MODELS.build(cfg.model.data_preprocessor).eval()
        num_classes = cfg.model.roi_head.bbox_head.get('num_classes')
        self.detector = OnnxActionDetector(path, num_classes)

    @classmethod
    def from_config(cls, path: str, config: str) -> Tuple['OnnxDemoBackend', object]:
        """The backend of ``path`` and the config ``config`` (read once), as a pair."""
        from mmengine.config import Config

        cfg = Config.fromfile(config)
        return cls(path, cfg), cfg

    @torch.no_grad()
    def predict_batch(self, inputs: List[torch.Tensor], samples: Sequence) -> list:
        """Score ``B`` clips ``(3, T, H, W)`` with their samples' ``proposals``; see the class."""
        from mmengine.structures import InstanceData

        data = self.data_preprocessor(dict(inputs=inputs, data_samples=samples), False)
        outputs = []
        for index, sample in enumerate(data['data_samples']):
            clip = data['inputs'][index : index + 1].numpy()  # (1, 3, T, H, W)
            boxes = sample.proposals.bboxes.float()  # (n, 4) pixels of the input
            if len(boxes):
                scores = self.detector.scores(clip, boxes.numpy())  # (n, K)
            else:
                scores = np.zeros((0, self.detector.num_classes), INPUT_DTYPE)
            img_h, img_w = sample.metainfo['img_shape'][:2]
            scale = boxes.new_tensor([img_w, img_h, img_w, img_h])
            sample.pred_instances = InstanceData(
                bboxes=boxes / scale, scores=torch.from_numpy(scores)
            )
            outputs.append(sample)
        return outputs


__all__ = ['OnnxActionDetector', 'OnnxDemoBackend']
