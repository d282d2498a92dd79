"""Spatio-temporal action detection on one video: proposals, clip scores, tubes, drawing.

Shape shorthand: ``T`` frames of the video, ``H x W`` its size, ``h x w`` the
model's input size (short side resized), ``L`` frames of a clip, ``N``
proposals of a frame, ``K`` classes.

The steps mirror the MultiSports test protocol on one video that has no
annotation: every frame with person proposals is a key frame; its clip of
``L`` frames (``frame_interval`` apart, centred on it and clamped at the video
borders, as mmaction2's ``SampleAVAFrames`` in test mode) goes through the
detector in batches; the per-class scores of all frames are linked into tubes
by :func:`pcca_plugin.evaluation.link_tubes` (the official linking), and the
tubes are drawn by :func:`pcca_plugin.visualization.tubes.draw_tubes`.

Frames are read with OpenCV, or with decord when OpenCV cannot decode the
file, at any resolution and frame rate. The whole video is read once at the
model's input size; drawing re-reads it in chunks so that long, large videos
do not have to fit in memory at full size.
"""

import json
import os
import os.path as osp
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.utils import ProgressBar

from ..evaluation.functional import MIN_TUBE_LENGTH, MIN_TUBE_SCORE, link_tubes
from ..utils.multisports_format import FIRST_FRAME, frame_key, parse_frame_key
from .tubes import draw_tubes, tubes_for_video

#: Frame rate written when a container does not report one.
DEFAULT_FPS = 25.0
#: Clips per forward pass of the action detector.
DEFAULT_BATCH_SIZE = 4
#: Frames drawn and written per chunk.
DRAW_CHUNK = 64
#: Person-detector score threshold when the config does not name one (paper, section 3.1).
DEFAULT_PERSON_SCORE_THR = 0.6
#: Columns of a proposal row: normalised x1, y1, x2, y2 and the detector score.
PROPOSAL_COLUMNS = 5
BOX_COLUMNS = 4
#: A frame-detection row ``[video_index, frame, label, score, x1, y1, x2, y2]``.
FRAME_DET_COLUMNS = 8


class VideoReadError(OSError):
    """Neither OpenCV nor decord can decode the video."""


# --------------------------------------------------------------------------- reading
def iter_video_frames(path: str) -> Tuple[float, Iterator[np.ndarray]]:
    """Open a video with OpenCV, else decord; return its fps and a frame iterator.

    Args:
        path: video file.

    Returns:
        tuple: ``fps`` (:data:`DEFAULT_FPS` when unknown) and an iterator of
        ``(H, W, 3)`` uint8 BGR frames.

    Raises:
        FileNotFoundError: no such file.
        VideoReadError: neither reader decodes a frame (the message names the file).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: no such video file')
    capture = cv2.VideoCapture(path)
    if capture.isOpened():
        ok, first = capture.read()
        if ok and first is not None:
            fps = capture.get(cv2.CAP_PROP_FPS) or DEFAULT_FPS
            return float(fps), _opencv_frames(capture, first)
    capture.release()
    try:
        import decord

        reader = decord.VideoReader(path)
        if len(reader) == 0:
            raise RuntimeError('no frame')
        fps = reader.get_avg_fps() or DEFAULT_FPS
    except Exception as exc:  # decord raises its own error types, or is missing
        raise VideoReadError(
            f'{path}: neither OpenCV nor decord can decode this video ({exc}); re-encode it, '
            'e.g. ffmpeg -i in -c:v libx264 -pix_fmt yuv420p out.mp4'
        ) from None
    return float(fps), (reader[i].asnumpy()[:, :, ::-1] for i in range(len(reader)))


def _opencv_frames(capture: cv2.VideoCapture, first: np.ndarray) -> Iterator[np.ndarray]:
    try:
        yield first
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            yield frame
    finally:
        capture.release()


def resize_short_side(frame: np.ndarray, short_side: Optional[int]) -> np.ndarray:
    """Resize so that ``min(h, w) == short_side`` (aspect kept); None keeps the size."""
    if short_side is None:
        return frame
    height, width = frame.shape[:2]
    scale = short_side / min(height, width)
    size = (int(round(width * scale)), int(round(height * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)


def clip_indices(center: int, num_frames: int, clip_len: int, frame_interval: int) -> np.ndarray:
    """0-based frame indices ``(L,)`` of the clip centred on frame ``center`` (0-based).

    As mmaction2's ``SampleAVAFrames`` (test mode): ``center + (i - L // 2) *
    frame_interval`` for ``i < L``, clamped to ``[0, num_frames - 1]``.
    """
    offsets = (np.arange(clip_len) - clip_len // 2) * frame_interval  # (L,)
    return np.clip(center + offsets, 0, num_frames - 1)


# --------------------------------------------------------------------------- proposals
def load_proposal_file(path: str, video_name: str, num_frames: int) -> Dict[int, np.ndarray]:
    """Person boxes of one video from a pickle.

    The pickle is a dict ``frame -> (n, 5)`` array ``[x1, y1, x2, y2, score]``
    normalised to ``[0, 1]`` (``(n, 4)``: score 1), keyed by the frame number
    (1-based int) or by ``'<video_name>,<frame>'`` as the proposal files of
    ``tools/det/generate_proposals.py``.

    Returns:
        dict: 1-based frame -> float32 ``(n, 5)``.

    Raises:
        ValueError / KeyError: bad arrays or keys, naming the file and the key.
    """
    from ..utils.pickle_io import load_pickle

    raw = load_pickle(path)
    if not isinstance(raw, dict):
        raise TypeError(f'{path}: proposals are a dict frame -> (n, 5) array, found {type(raw)}')
    proposals: Dict[int, np.ndarray] = {}
    videos = set()
    for key, boxes in raw.items():
        if isinstance(key, str):
            video, frame = parse_frame_key(key)
            videos.add(video)
            if video != video_name:
                continue
        else:
            frame = int(key)
        boxes = np.asarray(boxes, dtype=np.float32)
        if boxes.size == 0:
            boxes = boxes.reshape(0, PROPOSAL_COLUMNS)
        if boxes.ndim != 2 or boxes.shape[1] not in (BOX_COLUMNS, PROPOSAL_COLUMNS):
            raise ValueError(f'{path}: key {key!r} holds shape {boxes.shape}, expected (n, 5)')
        if boxes.shape[1] == BOX_COLUMNS:
            boxes = np.concatenate([boxes, np.ones((len(boxes), 1), np.float32)], axis=1)
        if (
            not np.all(np.isfinite(boxes))
            or boxes[:, :BOX_COLUMNS].min(initial=0) < 0
            or (boxes[:, :BOX_COLUMNS].max(initial=0) > 1)
        ):
            raise ValueError(
                f'{path}: key {key!r}: boxes must be finite and normalised to [0, 1] '
                '(divide pixel boxes by the frame width/height)'
            )
        if not FIRST_FRAME <= frame <= num_frames:
            raise ValueError(f'{path}: key {key!r} is outside the video (frames 1..{num_frames})')
        proposals[frame] = boxes
    if videos and not proposals:
        raise KeyError(
            f'{path}: no key names video {video_name!r} (it holds {sorted(videos)[:3]}...); '
            'pass --video-name'
        )
    return proposals


# --------------------------------------------------------------------------- the model
@dataclass
class ClipSettings:
    """What the config says about the model's input clips."""

    clip_len: int = 32
    frame_interval: int = 2
    short_side: Optional[int] = None
    person_score_thr: float = DEFAULT_PERSON_SCORE_THR
    class_names: List[str] = field(default_factory=list)


def clip_settings_from_config(cfg: Config) -> ClipSettings:
    """Read clip length, interval, short side, detector threshold and class names."""
    settings = ClipSettings()
    dataset = cfg.get('test_dataloader', {}).get('dataset', {})
    while 'dataset' in dataset:
        dataset = dataset['dataset']
    for step in dataset.get('pipeline', []):
        if step.get('type') == 'SampleAVAFrames':
            settings.clip_len = int(step['clip_len'])
            settings.frame_interval = int(step.get('frame_interval', settings.frame_interval))
        if step.get('type') == 'Resize':
            scale = step.get('scale')
            if isinstance(scale, (tuple, list)) and -1 in scale:
                settings.short_side = int(max(scale))
    settings.person_score_thr = float(dataset.get('person_det_score_thr', DEFAULT_PERSON_SCORE_THR))
    evaluator = cfg.get('test_evaluator', {})
    gt_file = evaluator.get('gt_file') if isinstance(evaluator, dict) else None
    if isinstance(gt_file, str) and osp.isfile(gt_file):
        from ..utils.pickle_io import load_pickle

        settings.class_names = [str(name) for name in load_pickle(gt_file)['labels']]
    return settings


def read_class_names(path: str) -> List[str]:
    """Class names from a JSON list (of names or of dicts with 'name') or a text file."""
    with open(path, encoding='utf-8') as f:
        text = f.read()
    if path.endswith('.json'):
        names = json.loads(text)
        return [n['name'] if isinstance(n, dict) else str(n) for n in names]
    return [line.strip() for line in text.splitlines() if line.strip()]


def build_action_detector(
    config: str, checkpoint: Optional[str], device: str = 'cpu'
) -> Tuple[torch.nn.Module, Config]:
    """Build the detector of a pcca_plugin config and load its checkpoint.

    Args:
        config: config file.
        checkpoint: checkpoint file, or None for random weights (benchmarks):
            pretrained-weight downloads (``init_cfg`` / ``backbone.pretrained``)
            are then skipped.
        device: torch device.

    Raises:
        KeyError: a type of the config is not registered; when the plugin's components
            are not, the message says to call ``pcca_plugin.register_all_modules()``.
    """
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope
    from mmengine.runner import load_checkpoint

    from ..registration import build_registered

    cfg = Config.fromfile(config)
    if checkpoint is None:
        cfg.model.pop('init_cfg', None)
        if 'pretrained' in cfg.model.get('backbone', {}):
            cfg.model.backbone.pretrained = None
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmaction')):
        model = build_registered(MODELS, cfg.model)
    if checkpoint is None:
        model.init_weights()
    else:
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f'{checkpoint}: no such checkpoint file')
        load_checkpoint(model, checkpoint, map_location='cpu', revise_keys=[(r'^module\.', '')])
    return model.to(device).eval(), cfg


@torch.no_grad()
def score_key_frames(
    model: torch.nn.Module,
    frames: Sequence[np.ndarray],
    proposals: Dict[int, np.ndarray],
    settings: ClipSettings,
    video_name: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
) -> Dict[int, Tuple[np.ndarray, np.ndarray]]:
    """Per-class scores of the proposals of every key frame, clips in batches.

    Args:
        model: a built detector (``test_step`` returns ``pred_instances``).
        frames: ``T`` RGB frames ``(h, w, 3)`` uint8 at the model's input size.
        proposals: 1-based frame -> ``(n, 5)`` normalised boxes and scores
            (already thresholded).
        settings: clip length and interval.
        video_name: for the clip keys.
        batch_size: clips per forward pass.
        progress: show a progress bar.

    Returns:
        dict: frame -> (``(n, 4)`` boxes normalised, ``(n, K)`` scores).
    """
    key_frames = sorted(f for f, boxes in proposals.items() if len(boxes))
    height, width = frames[0].shape[:2]
    scale = np.array([width, height, width, height], dtype=np.float32)
    bar = ProgressBar(len(key_frames)) if progress and key_frames else None
    results: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}
    for start in range(0, len(key_frames), batch_size):
        batch = key_frames[start : start + batch_size]
        inputs, samples = [], []
        for frame in batch:
            from mmaction.structures import ActionDataSample
            from mmengine.structures import InstanceData

            idx = clip_indices(
                frame - FIRST_FRAME, len(frames), settings.clip_len, settings.frame_interval
            )
            clip = np.stack([frames[i] for i in idx])  # (L, h, w, 3)
            inputs.append(torch.from_numpy(clip).permute(3, 0, 1, 2).float())  # (3, L, h, w)
            sample = ActionDataSample()
            sample.set_metainfo(
                dict(img_shape=(height, width), img_key=frame_key(video_name, frame))
            )
            boxes = proposals[frame][:, :BOX_COLUMNS] * scale  # (n, 4) pixels of the input
            sample.proposals = InstanceData(bboxes=torch.from_numpy(boxes))
            samples.append(sample)
        outputs = predict_batch(model, inputs, samples)
        for frame, output in zip(batch, outputs):
            pred = output.pred_instances
            results[frame] = (
                pred.bboxes.detach().cpu().numpy().reshape(-1, BOX_COLUMNS),
                pred.scores.detach().cpu().numpy().reshape(len(pred.bboxes), -1),
            )
        if bar is not None:
            for _ in batch:
                bar.update()
    if bar is not None:
        print()
    return results


def predict_batch(model: torch.nn.Module, inputs: List[torch.Tensor], samples: list) -> list:
    """Run a two-stage detector on ``B`` clips: one batched backbone pass, per-clip RoI heads.

    mmaction2's ``AVARoIHead.predict`` accepts one clip at a time, so the
    backbone features ``(B, C, t, h', w')`` are split per clip before it
    (the same calls as mmdet's ``TwoStageDetector.predict`` with given proposals).

    Args:
        model: the detector.
        inputs: ``B`` clips ``(3, L, h, w)``.
        samples: ``B`` data samples with ``proposals`` and ``img_shape``.

    Returns:
        list: the samples with ``pred_instances`` (boxes normalised, scores ``(n, K)``).
    """
    if hasattr(model, 'predict_batch'):  # onnxruntime: pcca_plugin.deployment.OnnxDemoBackend
        return model.predict_batch(inputs, samples)
    data = model.data_preprocessor(dict(inputs=inputs, data_samples=samples), False)
    features = model.extract_feat(data['inputs'])  # per pathway (B, C, t, h', w')
    features = features if isinstance(features, (tuple, list)) else (features,)
    outputs = []
    for index, sample in enumerate(data['data_samples']):
        clip_features = tuple(f[index : index + 1] for f in features)  # (1, C, t, h', w')
        results = model.roi_head.predict(clip_features, [sample.proposals], [sample])
        sample.pred_instances = results[0]
        outputs.append(sample)
    return outputs


def frame_detections(
    scores: Dict[int, Tuple[np.ndarray, np.ndarray]], height: int, width: int
) -> np.ndarray:
    """Official ``(M, 8)`` rows ``[0, frame, label, score, x1, y1, x2, y2]`` in pixels."""
    rows = []
    size = np.array([width, height, width, height], dtype=np.float64)
    for frame in sorted(scores):
        boxes, class_scores = scores[frame]
        num_boxes, num_classes = class_scores.shape
        block = np.zeros((num_boxes * num_classes, FRAME_DET_COLUMNS))
        block[:, 1] = frame
        block[:, 2] = np.tile(np.arange(num_classes), num_boxes)
        block[:, 3] = class_scores.reshape(-1)  # (n * K,) box-major
        block[:, 4:8] = np.repeat(boxes.astype(np.float64) * size, num_classes, axis=0)
        rows.append(block)
    return np.concatenate(rows) if rows else np.zeros((0, FRAME_DET_COLUMNS))


def link_video(
    dets: np.ndarray,
    video_name: str,
    class_names: Sequence[str],
    num_frames: int,
    height: int,
    width: int,
    len_thr: int = MIN_TUBE_LENGTH,
    score_thr: float = MIN_TUBE_SCORE,
) -> List[Tuple[int, float, np.ndarray]]:
    """Link frame detections of one video with the official linker.

    Returns:
        list: ``(label, tube_score, tube (L, 6) [frame, x1, y1, x2, y2, box_score])``
        sorted by score, best first.
    """
    gt = dict(
        labels=list(class_names),
        train_videos=[[]],
        test_videos=[[video_name]],
        nframes={video_name: int(num_frames)},
        resolution={video_name: (int(height), int(width))},
        gttubes={video_name: {}},
    )
    tubes = link_tubes(gt, dets, len_thr=len_thr, score_thr=score_thr)
    return tubes_for_video(tubes, video_name)


def write_annotated_video(
    path: str,
    out: str,
    tubes: Sequence[Tuple[int, float, np.ndarray]],
    class_names: Sequence[str],
    fps: float,
    chunk: int = DRAW_CHUNK,
) -> Tuple[int, int, int]:
    """Re-read ``path`` in chunks, draw the tubes and write an mp4 (mp4v).

    Returns:
        tuple: ``(frames written, height, width)`` of the output.
    """
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    _, frames = iter_video_frames(path)
    writer, written, size = None, 0, (0, 0)
    buffer: List[np.ndarray] = []

    def flush(first: int) -> None:
        nonlocal writer, written, size
        shifted = [(label, score, _shift(tube, first)) for label, score, tube in tubes]
        canvas = draw_tubes(np.stack(buffer), shifted, class_names)  # (t, H', W', 3)
        if writer is None:
            size = canvas.shape[1:3]
            writer = cv2.VideoWriter(out, cv2.VideoWriter_fourcc(*'mp4v'), fps, (size[1], size[0]))
            if not writer.isOpened():
                raise OSError(f'{out}: OpenCV cannot open an mp4 writer here')
        for frame in canvas:
            writer.write(np.ascontiguousarray(frame))
        written += len(canvas)
        buffer.clear()

    first = 0
    try:
        for frame in frames:
            buffer.append(frame)
            if len(buffer) == chunk:
                flush(first)
                first += chunk
        if buffer:
            flush(first)
    finally:
        if writer is not None:
            writer.release()
    return written, int(size[0]), int(size[1])


def _shift(tube: np.ndarray, first: int) -> np.ndarray:
    shifted = np.array(tube, dtype=np.float64, copy=True)
    shifted[:, 0] -= first
    return shifted


def tubes_to_json(
    tubes: Sequence[Tuple[int, float, np.ndarray]], class_names: Sequence[str]
) -> List[Dict]:
    """Tubes as JSON records; ``id`` is the ``#id`` drawn on the video."""
    records = []
    for tube_id, (label, score, tube) in enumerate(tubes):
        tube = np.asarray(tube, dtype=np.float64)
        records.append(
            dict(
                id=tube_id,
                label=int(label),
                label_name=str(class_names[label]),
                score=float(score),
                frames=[int(f) for f in tube[:, 0]],
                boxes=np.round(tube[:, 1:5], 2).tolist(),
                box_scores=np.round(tube[:, 5], 4).tolist(),
            )
        )
    return records


# --------------------------------------------------------------------------- end to end
@dataclass
class DemoResult:
    """What :func:`run_video_demo` made and how long each step took (seconds)."""

    num_frames: int
    fps: float
    height: int
    width: int
    tubes: List[Dict]
    out_frames: int = 0
    out_size: Tuple[int, int] = (0, 0)
    timings: Dict[str, float] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        """Video frames processed per second, end to end."""
        total = sum(self.timings.values())
        return self.num_frames / total if total > 0 else float('inf')


def run_video_demo(
    video: str,
    model: torch.nn.Module,
    settings: ClipSettings,
    out: Optional[str] = None,
    json_out: Optional[str] = None,
    proposals: Optional[Dict[int, np.ndarray]] = None,
    proposal_file: Optional[str] = None,
    detect: Optional[Callable[[List[np.ndarray]], List[np.ndarray]]] = None,
    video_name: Optional[str] = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    det_batch_size: int = DEFAULT_BATCH_SIZE,
    len_thr: int = MIN_TUBE_LENGTH,
    tube_score_thr: float = MIN_TUBE_SCORE,
    progress: bool = True,
) -> DemoResult:
    """Proposals, clip scores, tubes, annotated video and JSON for one video.

    Exactly one of ``proposals`` (frame -> ``(n, 5)``), ``proposal_file`` or
    ``detect`` (BGR images -> ``(n, 5)`` normalised boxes each, e.g.
    :meth:`pcca_plugin.proposals.detector.PersonDetector.detect`) gives the persons.
    """
    if sum(x is not None for x in (proposals, proposal_file, detect)) != 1:
        raise ValueError('give exactly one of proposals, proposal_file or detect')
    video_name = video_name or osp.splitext(osp.basename(video))[0]
    timings: Dict[str, float] = {}
    tic = time.perf_counter()
    fps, frame_iter = iter_video_frames(video)
    model_frames: List[np.ndarray] = []
    detected: Dict[int, np.ndarray] = {}
    pending: List[np.ndarray] = []
    height = width = 0
    det_seconds = 0.0
    for index, frame in enumerate(frame_iter):
        height, width = frame.shape[:2]
        model_frames.append(resize_short_side(frame, settings.short_side)[:, :, ::-1].copy())
        if detect is not None:
            pending.append(frame)
            if len(pending) == det_batch_size:
                det_start = time.perf_counter()
                for offset, boxes in enumerate(detect(pending)):
                    detected[index - len(pending) + 1 + offset + FIRST_FRAME] = boxes
                det_seconds += time.perf_counter() - det_start
                pending = []
    if detect is not None and pending:
        det_start = time.perf_counter()
        first = len(model_frames) - len(pending)
        for offset, boxes in enumerate(detect(pending)):
            detected[first + offset + FIRST_FRAME] = boxes
        det_seconds += time.perf_counter() - det_start
    num_frames = len(model_frames)
    timings['read'] = time.perf_counter() - tic - det_seconds
    timings['detect'] = det_seconds
    if proposal_file is not None:
        proposals = load_proposal_file(proposal_file, video_name, num_frames)
    elif detect is not None:
        proposals = detected
    kept = {
        f: np.asarray(b, np.float32)[np.asarray(b)[:, BOX_COLUMNS] >= settings.person_score_thr]
        for f, b in proposals.items()
        if FIRST_FRAME <= f <= num_frames
    }
    tic = time.perf_counter()
    scores = score_key_frames(model, model_frames, kept, settings, video_name, batch_size, progress)
    timings['score'] = time.perf_counter() - tic
    del model_frames
    num_classes = next((s.shape[1] for _, s in scores.values()), None)
    class_names = list(settings.class_names)
    if num_classes is not None and class_names and len(class_names) != num_classes:
        raise ValueError(
            f'{len(class_names)} class names for a model that scores {num_classes} classes; '
            'pass --class-names with one name per class'
        )
    if not class_names and num_classes is not None:
        class_names = [f'class {k}' for k in range(num_classes)]
    tic = time.perf_counter()
    dets = frame_detections(scores, height, width)
    tubes = (
        link_video(
            dets, video_name, class_names, num_frames, height, width, len_thr, tube_score_thr
        )
        if len(dets)
        else []
    )
    timings['link'] = time.perf_counter() - tic
    result = DemoResult(
        num_frames=num_frames,
        fps=fps,
        height=height,
        width=width,
        tubes=tubes_to_json(tubes, class_names),
        timings=timings,
    )
    if out is not None:
        tic = time.perf_counter()
        written, out_h, out_w = write_annotated_video(video, out, tubes, class_names, fps)
        result.out_frames, result.out_size = written, (out_h, out_w)
        timings['write'] = time.perf_counter() - tic
    if json_out is not None:
        os.makedirs(osp.dirname(osp.abspath(json_out)), exist_ok=True)
        with open(json_out, 'w', encoding='utf-8') as f:
            json.dump(
                dict(
                    video=video,
                    video_name=video_name,
                    fps=fps,
                    num_frames=num_frames,
                    height=height,
                    width=width,
                    classes=class_names,
                    tubes=result.tubes,
                ),
                f,
                indent=1,
            )
    return result


def demo_video_file(
    video: str,
    config: str,
    checkpoint: str,
    proposal_file: Optional[str] = None,
    det_config: Optional[str] = None,
    det_checkpoint: Optional[str] = None,
    short_side: Optional[int] = None,
    person_score_thr: Optional[float] = None,
    class_names_file: Optional[str] = None,
    device: str = 'cpu',
    onnx: Optional[str] = None,
    **demo_options,
) -> DemoResult:
    """The demo of ``tools/demo/demo_video.py``: a config, a checkpoint and a video file.

    Builds the action detector (:func:`build_action_detector`), takes its clip
    settings from the config with the given overrides, and runs
    :func:`run_video_demo` with persons from ``proposal_file`` or from the mmdet
    detector ``det_config`` / ``det_checkpoint``.

    Args:
        video, config, checkpoint: the input video, action detector config and checkpoint.
        proposal_file: person boxes pickle (or ``det_config`` and ``det_checkpoint``).
        det_config, det_checkpoint: an mmdet person detector.
        short_side, person_score_thr: override the config's (None: keep them).
        class_names_file: class names (:func:`read_class_names`).
        device: torch device.
        onnx: an exported detector run by onnxruntime instead (``checkpoint`` is not read).
        demo_options: passed to :func:`run_video_demo` (``out``, ``json_out``,
            ``video_name``, ``batch_size``, ``det_batch_size``, ``len_thr``,
            ``tube_score_thr``, ``progress``).
    """
    if not osp.isfile(video):
        raise FileNotFoundError(f'{video}: no such video file')
    if onnx is not None:
        from ..deployment.runtime import OnnxDemoBackend

        model, cfg = OnnxDemoBackend.from_config(onnx, config)
    else:
        model, cfg = build_action_detector(config, checkpoint, device)
    settings = clip_settings_from_config(cfg)
    if short_side is not None:
        settings.short_side = short_side
    if person_score_thr is not None:
        settings.person_score_thr = person_score_thr
    if class_names_file:
        settings.class_names = read_class_names(class_names_file)
    detect = None
    if det_config:
        from ..proposals.detector import PersonDetector

        detect = PersonDetector(det_config, det_checkpoint, device).detect
    return run_video_demo(
        video, model, settings, proposal_file=proposal_file, detect=detect, **demo_options
    )


__all__ = [
    'ClipSettings',
    'DemoResult',
    'VideoReadError',
    'build_action_detector',
    'clip_indices',
    'clip_settings_from_config',
    'demo_video_file',
    'frame_detections',
    'iter_video_frames',
    'predict_batch',
    'link_video',
    'load_proposal_file',
    'read_class_names',
    'resize_short_side',
    'run_video_demo',
    'score_key_frames',
    'tubes_to_json',
    'write_annotated_video',
]
