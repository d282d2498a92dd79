"""``MultiSportsTubeMetric``: frame-mAP and video-mAP of the official MultiSports protocol.

A thin mmengine wrapper around :mod:`pcca_plugin.evaluation.functional`.
Compared with mmaction2 1.2.0's ``MultiSportsMetric`` it keeps every
(box, class, score) pair (not only the arg-max class), links with the
protocol's per-box scores, and is vectorised (see ``docs/evaluation.md``).

Inputs, per data sample (mmaction2's ``FastRCNN`` + ``AVARoIHead`` output):

* ``pred_instances.bboxes``: ``(N, 4)`` boxes normalised to ``[0, 1]`` by the
  frame size (``BBoxHeadAVA.predict_by_feat`` divides by ``img_shape`` and
  undoes the crop), converted here to pixels with the GT resolution;
* ``pred_instances.scores``: ``(N, C)`` per-class scores (sigmoid for
  multi-label heads); column ``i`` is the GT label ``class_indices[i]``;
* metainfo ``video_id`` (GT video name; a trailing ``.mp4`` is ignored),
  ``timestamp`` (1-based frame number) and optionally ``proposal_scores``
  ``(N,)`` (person-detector scores, used with ``multiply_detector_score``).

With ``protocol='server2021'`` the metric scores the linked tubes as the 2021
challenge server did (:mod:`pcca_plugin.evaluation.functional.server2021`),
the scorer of the PCCA paper's test figures, and reports its six figures
(``F@0.5``, ``V@0.2``, ``V@0.5``, ``V@0.05:0.45``, ``V@0.5:0.95``,
``V@0.1:0.9``) under the prefix ``server2021/`` (or ``prefix``).

With ``format_only=True`` (mmdet ``CocoMetric``'s convention) the metric needs
no GT: it writes the challenge submission (``<outfile_prefix>_frame_detections.pkl``,
``_videos.json``, ``_video_detections.pkl``; see
:mod:`pcca_plugin.evaluation.functional.submission`), logs where, and returns
no mAP. The videos come from ``gt_file`` when one is given, else from the
dataset's metainfo (``videos``, ``nframes``, ``resolution``, ``classes``, set
by ``MultiSportsDataset``).
"""

import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from mmaction.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from ...utils.pickle_io import dump_pickle
from ..functional import (
    FRAME_IOU_THR,
    MIN_TUBE_LENGTH,
    MIN_TUBE_SCORE,
    SERVER2021_FIGURES,
    VIDEO_IOU_RANGES,
    VIDEO_IOU_THRS,
    GroundTruth,
    VideoAPEvaluator,
    frame_ap,
    link_tubes,
    load_ground_truth,
    server2021_figures,
)
from ..functional.ap import check_tie_order
from ..functional.ground_truth import FRAME_DET_COLUMNS
from ..functional.submission import VideoList, write_submission

#: Video-name suffix that mmaction2's MultiSports annotations may carry.
VIDEO_SUFFIX = '.mp4'
#: Column of a model's score matrix that maps to no GT label (e.g. background).
IGNORED_COLUMN = -1
#: ``'multisports'``: today's official protocol; ``'server2021'``: the 2021 challenge server.
PROTOCOLS = ('multisports', 'server2021')
#: The prefix of the server-2021 figures when none is given.
SERVER2021_PREFIX = 'server2021'


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _range_key(name: str) -> str:
    first, last = name.split(':')
    return f'{float(first):g}:{float(last):g}'


@METRICS.register_module()
class MultiSportsTubeMetric(BaseMetric):
    """frame-mAP and video-mAP on MultiSports, exact to the official tool.

    Args:
        gt_file: ``multisports_GT.pkl`` (loaded with the restricted unpickler)
            or a GT dict; may be None with ``format_only=True``.
        class_indices: GT label of every score column; ``-1`` drops a column
            (e.g. a background column: ``[-1, 0, 1, ..., 65]``). Default:
            identity, which needs exactly one column per GT label.
        top_k: keep the ``top_k`` best classes of each box (None: all).
        score_thr: keep (box, class) pairs scoring at least this.
        multiply_detector_score: multiply class scores by the sample's
            ``proposal_scores``.
        bbox_normalized: boxes are in ``[0, 1]`` (mmaction2's heads); False
            for pixel boxes.
        frame_iou_thr: frame-mAP IoU threshold.
        video_iou_thrs: single video-mAP thresholds.
        video_iou_ranges: official ranges to average (keys of
            ``VIDEO_IOU_RANGES``: '0.05:0.45', '0.10:0.90', '0.50:0.95').
        link_len_thr: minimum linked tube length in frames.
        link_score_thr: minimum linked tube score.
        dump_frame_detections: write ``frame_detections.pkl`` (official
            format, readable by numpy 1.x and 2.x) here.
        dump_video_detections: write ``video_detections.pkl`` here.
        log_per_class: log a per-class AP table.
        tie_order: how tied scores rank: ``'official'`` (numpy's default
            argsort, as the official tool; its tie order depends on the numpy
            build) or ``'stable'`` (input order among ties: the same figures
            on every machine). See ``docs/protocol.md``, "Tied scores".
        protocol: ``'multisports'`` (default: today's official
            ``evaluate_multisports.py``, the keys above) or ``'server2021'``
            (the 2021 challenge server's six figures, comparable with the
            PCCA paper's table; ``frame_iou_thr``, ``video_iou_thrs`` and
            ``video_iou_ranges`` do not apply). See ``docs/protocol.md``.
        format_only: write the submission files under ``outfile_prefix``
            instead of evaluating; returns no metric.
        outfile_prefix: path prefix of the submission files (required with
            ``format_only``).
        archive: with ``format_only``, also write ``<outfile_prefix>_submission.zip``,
            the two files as the 2021 challenge server read them (``docs/submission.md``).
        collect_device: 'cpu' or 'gpu' for gathering across ranks.
        prefix: metric name prefix (None: keys like ``'frame_mAP@0.5'``).
    """

    default_prefix: Optional[str] = None

    def __init__(
        self,
        gt_file: Union[str, dict, None] = None,
        class_indices: Optional[Sequence[int]] = None,
        top_k: Optional[int] = None,
        score_thr: float = 0.0,
        multiply_detector_score: bool = False,
        bbox_normalized: bool = True,
        frame_iou_thr: float = FRAME_IOU_THR,
        video_iou_thrs: Sequence[float] = VIDEO_IOU_THRS,
        video_iou_ranges: Sequence[str] = ('0.10:0.90',),
        link_len_thr: int = MIN_TUBE_LENGTH,
        link_score_thr: float = MIN_TUBE_SCORE,
        dump_frame_detections: Optional[str] = None,
        dump_video_detections: Optional[str] = None,
        log_per_class: bool = True,
        tie_order: str = 'official',
        protocol: str = 'multisports',
        format_only: bool = False,
        outfile_prefix: Optional[str] = None,
        archive: bool = False,
        collect_device: str = 'cpu',
        prefix: Optional[str] = None,
    ) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(
                f'MultiSportsTubeMetric: protocol must be one of {PROTOCOLS} (multisports: '
                "today's official evaluation; server2021: the 2021 challenge server, the "
                f"paper's figures), got {protocol!r}"
            )
        if protocol == 'server2021' and prefix is None:
            prefix = SERVER2021_PREFIX
        self.protocol = protocol
        super().__init__(collect_device=collect_device, prefix=prefix)
        if format_only and not outfile_prefix:
            raise ValueError(
                'MultiSportsTubeMetric: format_only=True writes the submission files but '
                'outfile_prefix is not set; give the path prefix of the files, e.g. '
                "outfile_prefix='work_dirs/submission/multisports' (tools/test.py "
                '--format-only --outfile-prefix PREFIX)'
            )
        if gt_file is None and not format_only:
            raise ValueError(
                'MultiSportsTubeMetric: gt_file is required to evaluate; without GT (the '
                'test split) set format_only=True and outfile_prefix'
            )
        if archive and not format_only:
            raise ValueError(
                'MultiSportsTubeMetric: archive=True zips the submission files of a '
                'format-only run; set format_only=True and outfile_prefix too'
            )
        self.archive = bool(archive)
        self.format_only = bool(format_only)
        self.outfile_prefix = outfile_prefix
        self.gt_source = (
            gt_file if isinstance(gt_file, str) else '<GT dict>' if gt_file is not None else None
        )
        self.gt: Optional[GroundTruth] = None if gt_file is None else load_ground_truth(gt_file)
        #: The videos of the dataset's metainfo (format_only without GT), built on first use.
        self._meta_videos: Optional[VideoList] = None
        self._meta_index: Dict[str, int] = {}
        self._meta_source: Optional[dict] = None
        #: Score columns of the model (label space when no class names are known).
        self._num_columns: int = 0
        if class_indices is not None:
            class_indices = [int(c) for c in class_indices]
            num_labels = self.gt.num_labels if self.gt is not None else None
            bad = [
                c
                for c in class_indices
                if c < IGNORED_COLUMN or (num_labels is not None and c >= num_labels)
            ]
            if bad:
                raise ValueError(
                    f'class_indices holds {bad}, outside [0, {num_labels}) of the labels '
                    f'of {self.gt_source} (use {IGNORED_COLUMN} to drop a column)'
                )
        self.class_indices = class_indices
        if top_k is not None and top_k < 1:
            raise ValueError(f'top_k must be >= 1 or None, got {top_k}')
        for name in video_iou_ranges:
            if name not in VIDEO_IOU_RANGES:
                raise ValueError(
                    f'unknown video IoU range {name!r}; choose from {list(VIDEO_IOU_RANGES)}'
                )
        self.top_k = top_k
        self.score_thr = score_thr
        self.multiply_detector_score = multiply_detector_score
        self.bbox_normalized = bbox_normalized
        self.frame_iou_thr = frame_iou_thr
        self.video_iou_thrs = tuple(video_iou_thrs)
        self.video_iou_ranges = tuple(video_iou_ranges)
        self.link_len_thr = link_len_thr
        self.link_score_thr = link_score_thr
        self.dump_frame_detections = dump_frame_detections
        self.dump_video_detections = dump_video_detections
        self.log_per_class = log_per_class
        self.tie_order = check_tie_order(tie_order)

    # -- per batch -------------------------------------------------------------------------

    def _videos(self) -> VideoList:
        """format_only without GT: the videos of the dataset's metainfo, in its order."""
        meta = self.dataset_meta or {}
        if self._meta_videos is None or self._meta_source is not self._dataset_meta:
            missing = [key for key in ('videos', 'nframes', 'resolution') if key not in meta]
            if missing:
                raise KeyError(
                    f'MultiSportsTubeMetric: format_only without gt_file takes the test videos '
                    f"from the dataset's metainfo, which lacks {missing}; test on a "
                    'MultiSportsDataset (it sets them) or give gt_file'
                )
            names = [str(v) for v in meta['videos']]
            classes = meta.get('classes')
            self._meta_videos = VideoList(
                names=names,
                nframes=[int(meta['nframes'][v]) for v in names],
                resolution=[tuple(int(x) for x in meta['resolution'][v]) for v in names],
                labels=list(classes) if classes else [],
                source='<dataset metainfo>',
            )
            self._meta_index = {name: i for i, name in enumerate(names)}
            self._meta_source = self._dataset_meta
        return self._meta_videos

    def _num_labels(self, num_columns: int) -> int:
        if self.gt is not None:
            return self.gt.num_labels
        labels = self._videos().labels
        return len(labels) if labels else num_columns

    def _columns(self, num_columns: int, where: str):
        """Score columns kept and their GT labels."""
        num_labels = self._num_labels(num_columns)
        self._num_columns = num_columns
        if self.class_indices is None:
            if num_columns != num_labels:
                hint = (
                    f' (a background column? pass class_indices=[{IGNORED_COLUMN}] + '
                    f'list(range({num_labels})))'
                    if num_columns == num_labels + 1
                    else ''
                )
                raise ValueError(
                    f'{where}: the model scores {num_columns} classes but '
                    f'{self.gt_source or "the dataset"} has {num_labels} labels; set '
                    f'class_indices{hint}'
                )
            return np.arange(num_columns), np.arange(num_columns)
        if num_columns != len(self.class_indices):
            raise ValueError(
                f'{where}: the model scores {num_columns} classes but class_indices has '
                f'{len(self.class_indices)} entries'
            )
        mapping = np.asarray(self.class_indices)
        columns = np.flatnonzero(mapping != IGNORED_COLUMN)
        return columns, mapping[columns]

    def _sample_rows(self, sample: dict) -> tuple:
        video_name = str(sample['video_id'])
        where = f'MultiSportsTubeMetric: sample (video_id={video_name!r})'
        if self.gt is not None:
            video_index, resolution = self.gt.video_index, self.gt.resolution
            split = f'test_videos[0] of {self.gt_source}'
        else:
            videos = self._videos()
            video_index, resolution = self._meta_index, videos.resolution
            split = "the dataset's video list"
        if video_name not in video_index and video_name.endswith(VIDEO_SUFFIX):
            video_name = video_name[: -len(VIDEO_SUFFIX)]
        if video_name not in video_index:
            raise KeyError(f'{where}: video not in {split}')
        video = video_index[video_name]
        frame = int(_to_numpy(sample['timestamp']).reshape(-1)[0])
        where = f'{where[:-1]}, timestamp={frame})'
        pred = sample['pred_instances']
        boxes = _to_numpy(pred['bboxes']).astype(np.float64).reshape(-1, 4)  # (N, 4)
        scores = _to_numpy(pred['scores']).astype(np.float64)
        scores = scores.reshape(boxes.shape[0], -1)  # (N, C)
        if not (np.all(np.isfinite(boxes)) and np.all(np.isfinite(scores))):
            raise ValueError(f'{where}: predicted boxes or scores hold NaN or inf')
        columns, labels = self._columns(scores.shape[1], where)
        scores = scores[:, columns]  # (N, C') in GT label space
        if self.multiply_detector_score:
            if 'proposal_scores' not in sample:
                raise KeyError(f"{where}: multiply_detector_score needs 'proposal_scores' metainfo")
            det_scores = _to_numpy(sample['proposal_scores']).astype(np.float64).reshape(-1)
            if det_scores.size != boxes.shape[0]:
                raise ValueError(
                    f'{where}: {det_scores.size} proposal_scores for {boxes.shape[0]} boxes'
                )
            scores = scores * det_scores[:, None]
        if self.bbox_normalized:
            height, width = resolution[video]
            boxes = boxes * np.array([width, height, width, height])
        if self.top_k is not None and self.top_k < scores.shape[1]:
            picked = np.argsort(-scores, axis=1, kind='stable')[:, : self.top_k]  # (N, k)
        else:
            picked = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)  # (N, C')
        box_idx = np.repeat(np.arange(boxes.shape[0]), picked.shape[1])
        flat = picked.reshape(-1)  # (N * k,)
        kept_scores = scores[box_idx, flat]
        keep = kept_scores >= self.score_thr
        rows = np.empty((int(keep.sum()), len(FRAME_DET_COLUMNS)), dtype=np.float64)
        rows[:, 0] = video
        rows[:, 1] = frame
        rows[:, 2] = labels[flat[keep]]
        rows[:, 3] = kept_scores[keep]
        rows[:, 4:8] = boxes[box_idx[keep]]
        return video, frame, rows

    def process(self, data_batch, data_samples: Sequence) -> None:
        """Keep every (box, class, score) of each sample as small official-format rows."""
        for sample in data_samples:
            if not isinstance(sample, dict):
                sample = sample.to_dict()
            self.results.append(self._sample_rows(sample))

    # -- at the end ------------------------------------------------------------------------

    def compute_metrics(self, results: List[tuple]) -> Dict[str, float]:
        """frame-mAP, linking and video-mAP over all collected samples (in percent)."""
        # Canonical order (by video, then frame): rank-collection order must not change ties.
        results = sorted(results, key=lambda item: (item[0], item[1]))
        arrays = [rows for _, _, rows in results]
        dets = np.concatenate(arrays) if arrays else np.zeros((0, len(FRAME_DET_COLUMNS)))
        if self.format_only:
            return self._write_submission(dets)
        if self.dump_frame_detections:
            dump_pickle(dets, self.dump_frame_detections)
        if self.protocol == 'server2021':
            return self._server2021(dets)
        metrics: Dict[str, float] = {}
        frame_result = frame_ap(self.gt, dets, self.frame_iou_thr, tie_order=self.tie_order)
        metrics[f'frame_mAP@{self.frame_iou_thr:g}'] = frame_result.mean_ap
        tubes = self._link(dets)
        evaluator = VideoAPEvaluator(self.gt, tubes, tie_order=self.tie_order)
        video_results = {}
        for thr in self.video_iou_thrs:
            video_results[thr] = evaluator.ap(thr)
            metrics[f'video_mAP@{thr:g}'] = video_results[thr].mean_ap
        for name in self.video_iou_ranges:
            metrics[f'video_mAP@{_range_key(name)}'] = evaluator.range_map(name)
        if self.log_per_class:
            self._log_table(frame_result, video_results)
        return metrics

    def _link(self, dets: np.ndarray) -> dict:
        """The tubes of the frame detections (dumped when asked)."""
        tubes = link_tubes(
            self.gt,
            dets,
            len_thr=self.link_len_thr,
            score_thr=self.link_score_thr,
            tie_order=self.tie_order,
        )
        if self.dump_video_detections:
            dump_pickle(tubes, self.dump_video_detections)
        return tubes

    def _server2021(self, dets: np.ndarray) -> Dict[str, float]:
        """The 2021 challenge server's six figures of the frame detections and their tubes."""
        tubes = self._link(dets)
        figures = server2021_figures(self.gt, dets, tubes, tie_order=self.tie_order)
        if self.log_per_class:
            table = '\n'.join(f'{name:12s} {figures[name]:8.2f}' for name in SERVER2021_FIGURES)
            print_log(
                f'MultiSports, the 2021 challenge server ({osp.basename(self.gt_source)}):\n'
                + table,
                logger='current',
            )
        return figures

    def _write_submission(self, dets: np.ndarray) -> Dict[str, float]:
        """format_only: write the submission files, log where, return no metric."""
        if self.gt is not None:
            videos = VideoList.from_ground_truth(self.gt)
        else:
            videos = self._videos()
            if not videos.labels:  # a test split prepared without class names
                num_labels = (
                    max(self.class_indices) + 1 if self.class_indices else self._num_columns
                )
                videos.labels = [f'class {i}' for i in range(num_labels)]
        paths = write_submission(
            self.outfile_prefix,
            dets,
            videos,
            len_thr=self.link_len_thr,
            score_thr=self.link_score_thr,
            tie_order=self.tie_order,
            archive=self.archive,
        )
        print_log(
            f'MultiSportsTubeMetric (format_only): {len(dets)} frame detections of '
            f'{len(videos.names)} videos -> {paths["frame_detections"]} (video list '
            f'{paths["videos"]}), linked tubes -> {paths["video_detections"]}'
            + (f', archive -> {paths["archive"]}' if self.archive else '')
            + '; no mAP without GT. Upload them as docs/submission.md says',
            logger='current',
        )
        return {}

    def _log_table(self, frame_result, video_results) -> None:
        names = list(frame_result.per_class)
        header = ['class', f'frame AP@{self.frame_iou_thr:g}'] + [
            f'video AP@{thr:g}' for thr in video_results
        ]
        width = max([len(n) for n in names] + [len(header[0])])
        lines = ['  '.join([header[0].ljust(width)] + [h.rjust(14) for h in header[1:]])]
        for name in names:
            values = [frame_result.per_class[name]] + [
                r.per_class.get(name, 0.0) for r in video_results.values()
            ]
            lines.append('  '.join([name.ljust(width)] + [f'{v:14.2f}' for v in values]))
        means = [frame_result.mean_ap] + [r.mean_ap for r in video_results.values()]
        lines.append('  '.join(['mean'.ljust(width)] + [f'{v:14.2f}' for v in means]))
        source = osp.basename(self.gt_source)
        print_log(f'MultiSports per-class AP ({source}):\n' + '\n'.join(lines), logger='current')
