"""MultiSports-format spatio-temporal action detection dataset.

Reads the frame annotation file and the per-split person boxes written by
:func:`pcca_plugin.datasets.preparation.prepare_multisports` (also used for the
generated toy-sports data). One sample is one *key frame* of one video: its
person proposals (detector score >= ``person_det_score_thr``, 0.6 as in the
paper's section 3.1) and its ground-truth boxes with multi-hot labels.

Differences from mmaction2's ``AVADataset`` (1.2.0), on purpose:

* A frame without proposals never gets a full-frame box ``[0, 0, 1, 1]`` with
  score 1 (mmaction2's silent fallback, which turns into a full-frame false
  positive at evaluation), and a frame whose boxes all score below the
  threshold does not keep its best box either. What happens instead is chosen
  by ``empty_proposal_policy`` and logged.
* In test mode every frame of every video is a sample (the prepared ``val``
  file lists all frames), not only annotated frames.
* ``key_frames='annotated'`` trains on a split's annotated key frames only,
  the rule of the prepared ``train`` split: the val half of a train+val run
  (paper section 3.1) trains on val's annotated frames, not on every val frame.
* The test split of the challenge (``prepare_multisports.py --split test``)
  has no GT: its samples carry no boxes or labels. In test mode the ordered
  video list with frame counts and resolutions goes into the dataset's
  metainfo (``videos``, ``nframes``, ``resolution``), where
  ``MultiSportsTubeMetric`` with ``format_only=True`` reads it to write the
  submission files.
* Proposal keys are checked against the videos; a key naming another video or
  a frame outside the video is an error naming the key.

Frames are numbered from 1 (``timestamp``); the clip is sampled by mmaction2's
``SampleAVAFrames`` with ``fps=1, timestamp_start=1, start_index=0``, so the
0-based index of the key frame is ``timestamp - 1`` and the clip is clamped to
``[0, nframes - 1]`` at the borders (the border frame repeats). Raw frames are
read as ``filename_tmpl.format(index + 1)`` (``offset=1``).
"""

import os.path as osp
from collections import Counter
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np
from mmaction.datasets import BaseActionDataset
from mmaction.registry import DATASETS
from mmengine.logging import MMLogger

from pcca_plugin.utils.multisports_format import FIRST_FRAME, frame_key, parse_frame_key
from pcca_plugin.utils.pickle_io import load_pickle

from .preparation import ANNOTATION_FORMAT, ANNOTATION_VERSION, check_proposal_array

#: The paper keeps person detections with confidence >= 0.6 (section 3.1).
DEFAULT_PERSON_DET_SCORE_THR = 0.6
#: What to do with a key frame that has no proposal above the threshold.
EMPTY_PROPOSAL_POLICIES = ('skip', 'keep', 'error')
#: At most this many proposals per frame (highest scores first).
DEFAULT_NUM_MAX_PROPOSALS = 1000
#: Which of the file's key frames become samples: all of them, or those with an annotation
#: (the rule of the prepared train split, ``prepare_multisports.py --train-frames annotated``).
KEY_FRAME_RULES = ('file', 'annotated')
#: How many offending keys an error or warning message quotes.
NUM_EXAMPLES_IN_MESSAGE = 3


@DATASETS.register_module()
class MultiSportsDataset(BaseActionDataset):
    """Key frames of MultiSports-format videos with person proposals and multi-hot labels.

    Each data info (before the pipeline) holds:

    * ``video_id`` (GT video name), ``timestamp`` (1-based frame), ``img_key``
      (``'<video>,<frame>'``), ``ori_shape`` ``(h, w)`` from the GT;
    * ``proposals`` float32 ``(N, 4)`` and ``proposal_scores`` float32 ``(N,)``,
      normalised, sorted by score, aligned row by row;
    * ``gt_bboxes`` float32 ``(K, 4)`` normalised and ``gt_labels`` float32
      ``(K, num_classes)`` multi-hot (``K = 0`` on frames without actions);
    * ``frame_dir`` (raw frames) or ``filename`` (video), ``total_frames``,
      ``fps=1``, ``timestamp_start=1``, ``offset`` and ``filename_tmpl`` for the
      loading transforms; ``cat_ids`` (sorted label indices of the frame).

    Args:
        ann_file: ``<name>_{train,val}.pkl`` written by ``prepare_multisports.py``.
        pipeline: data transforms.
        proposal_file: ``<name>_dense_proposals_{train,val}.pkl`` of the same split.
        data_prefix: ``dict(img=root)``; videos are ``root/<video><video_suffix>``,
            raw frames ``root/<video>/<filename_tmpl>``.
        use_frames: read raw frames (True) or videos (False).
        video_suffix: file suffix of the videos.
        filename_tmpl: raw frame file names, formatted with the 1-based frame.
        person_det_score_thr: keep proposals with score >= this (inclusive).
        num_max_proposals: keep at most this many proposals per frame.
        empty_proposal_policy: a key frame with no proposal left after the
            threshold is dropped with a logged warning ('skip', default),
            kept with empty ``(0, 4)`` proposals ('keep', for models that
            accept it), or an error naming the frames ('error').
        frame_stride: keep key frames ``1, 1 + s, 1 + 2s, ...`` of each video
            (composes with the stride given to the preparation tool).
        key_frames: 'file' keeps every key frame the file lists; 'annotated'
            keeps those with at least one GT box, the train split's rule (for
            the val half of train+val training).
        check_media: at load time, raise if a video file or frame folder is missing.
        test_mode: evaluation mode.
        **kwargs: passed to :class:`mmaction.datasets.BaseActionDataset`.
    """

    def __init__(
        self,
        ann_file: str,
        pipeline: List[Union[dict, Callable]],
        proposal_file: str,
        data_prefix: Optional[dict] = None,
        use_frames: bool = True,
        video_suffix: str = '.mp4',
        filename_tmpl: str = 'img_{:05d}.jpg',
        person_det_score_thr: float = DEFAULT_PERSON_DET_SCORE_THR,
        num_max_proposals: int = DEFAULT_NUM_MAX_PROPOSALS,
        empty_proposal_policy: str = 'skip',
        frame_stride: int = 1,
        key_frames: str = 'file',
        check_media: bool = True,
        test_mode: bool = False,
        **kwargs,
    ) -> None:
        if not 0 <= person_det_score_thr <= 1:
            raise ValueError(f'person_det_score_thr must be in [0, 1], got {person_det_score_thr}')
        if empty_proposal_policy not in EMPTY_PROPOSAL_POLICIES:
            raise ValueError(
                f'empty_proposal_policy must be one of {EMPTY_PROPOSAL_POLICIES}, '
                f'got {empty_proposal_policy!r}'
            )
        if frame_stride < 1:
            raise ValueError(f'frame_stride must be >= 1, got {frame_stride}')
        if key_frames not in KEY_FRAME_RULES:
            raise ValueError(f'key_frames must be one of {KEY_FRAME_RULES}, got {key_frames!r}')
        self.key_frames = key_frames
        self.proposal_file = proposal_file
        self.use_frames = use_frames
        self.video_suffix = video_suffix
        self.filename_tmpl = filename_tmpl
        self.person_det_score_thr = person_det_score_thr
        self.num_max_proposals = num_max_proposals
        self.empty_proposal_policy = empty_proposal_policy
        self.frame_stride = frame_stride
        self.check_media = check_media
        #: Key frames left out for lack of proposals ('skip' policy), for reports.
        self.skipped_frames: List[str] = []
        super().__init__(
            ann_file,
            pipeline=pipeline,
            data_prefix=data_prefix if data_prefix is not None else dict(img=''),
            test_mode=test_mode,
            **kwargs,
        )

    # ------------------------------------------------------------------ loading
    def _load_annotation(self) -> Dict:
        ann = load_pickle(self.ann_file)
        if not isinstance(ann, dict) or ann.get('format') != ANNOTATION_FORMAT:
            raise ValueError(
                f'{self.ann_file}: not a frame annotation file of pcca_plugin (format '
                f'{ANNOTATION_FORMAT!r}); create it with tools/data/multisports/'
                'prepare_multisports.py from the MultiSports GT pickle'
            )
        if ann.get('version') != ANNOTATION_VERSION:
            raise ValueError(
                f'{self.ann_file}: annotation version {ann.get("version")}, this '
                f'code reads version {ANNOTATION_VERSION}; re-run the preparation'
            )
        return ann

    def _load_proposals(self, videos: Dict) -> Dict[str, np.ndarray]:
        proposal_file = self.proposal_file
        if self.data_root and not osp.isabs(proposal_file):
            proposal_file = osp.join(self.data_root, proposal_file)
        proposals = load_pickle(proposal_file)
        if not isinstance(proposals, dict):
            raise TypeError(
                f'{proposal_file}: person boxes are a dict frame key -> (n, 5) '
                f'array, found {type(proposals).__name__}'
            )
        checked = {}
        for key, boxes in proposals.items():
            video, frame = parse_frame_key(key)
            if video not in videos:
                raise KeyError(
                    f'{proposal_file}: key {key!r} names video {video!r}, which is not in '
                    f'{self.ann_file} ({len(videos)} videos, e.g. {list(videos)[:2]}). Use the '
                    'proposal file of the same split written by prepare_multisports.py'
                )
            nframes = videos[video]['nframes']
            if not FIRST_FRAME <= frame <= nframes:
                raise ValueError(
                    f'{proposal_file}: key {key!r} is outside video {video!r} '
                    f'(frames {FIRST_FRAME}..{nframes})'
                )
            checked[frame_key(video, frame)] = check_proposal_array(boxes, key, proposal_file)
        return checked

    def _media_path(self, video: str) -> str:
        root = self.data_prefix.get('img', '') or ''
        if self.use_frames:
            return osp.join(root, video)
        return osp.join(root, video + self.video_suffix)

    def _check_media(self, videos: Sequence[str]) -> None:
        missing = [
            self._media_path(v)
            for v in videos
            if not (osp.isdir if self.use_frames else osp.isfile)(self._media_path(v))
        ]
        if missing:
            what = 'frame folders' if self.use_frames else 'video files'
            fix = (
                'extract frames with tools/data/multisports/prepare_multisports.py --extract-frames'
                if self.use_frames
                else 'check data_prefix and video_suffix'
            )
            raise FileNotFoundError(
                f'{self.ann_file}: {len(missing)} {what} missing, e.g. '
                f'{missing[:NUM_EXAMPLES_IN_MESSAGE]}; {fix}'
            )

    def _select_proposals(self, boxes: Optional[np.ndarray]):
        """Threshold and cap one frame's person boxes -> ``(N, 4)``, ``(N,)`` float32."""
        if boxes is None or len(boxes) == 0:
            return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
        boxes = boxes[boxes[:, 4] >= self.person_det_score_thr]
        boxes = boxes[np.argsort(-boxes[:, 4], kind='stable')][: self.num_max_proposals]
        return (
            np.ascontiguousarray(boxes[:, :4], dtype=np.float32),
            np.ascontiguousarray(boxes[:, 4], dtype=np.float32),
        )

    def load_data_list(self) -> List[dict]:
        """One data info per key frame (see the class docstring)."""
        ann = self._load_annotation()
        videos = ann['videos']
        if ann['labels'] is not None:
            labels = list(ann['labels'])
            num_classes = len(labels)
            if self.num_classes is not None and self.num_classes != num_classes:
                raise ValueError(
                    f'num_classes={self.num_classes} but {self.ann_file} has '
                    f'{num_classes} labels; set num_classes={num_classes}'
                )
            self.num_classes = num_classes
            self._metainfo.update(classes=tuple(labels))
        else:  # a test split prepared without class names: the model's count
            num_classes = self.num_classes or 0
        if self.test_mode:
            # The ordered video list, what a submission's video_index refers to. Only in
            # test mode: ConcatDataset (train + val training) requires equal metainfo.
            self._metainfo.update(
                videos=tuple(videos),
                nframes={video: int(info['nframes']) for video, info in videos.items()},
                resolution={
                    video: tuple(int(v) for v in info['resolution'])
                    for video, info in videos.items()
                },
            )
        if self.check_media:
            self._check_media(list(videos))
        proposals = self._load_proposals(videos)
        data_list = []
        empty = []
        for video, info in videos.items():
            nframes = int(info['nframes'])
            resolution = tuple(int(v) for v in info['resolution'])
            media = self._media_path(video)
            for frame in np.asarray(info['keyframes']).tolist():
                if (frame - FIRST_FRAME) % self.frame_stride:
                    continue
                key = frame_key(video, frame)
                if self.key_frames == 'annotated' and key not in ann['annotations']:
                    continue
                boxes, scores = self._select_proposals(proposals.get(key))
                if len(boxes) == 0:
                    empty.append(key)
                    if self.empty_proposal_policy != 'keep':
                        continue
                gt = ann['annotations'].get(key)
                if gt is None:
                    gt_bboxes = np.zeros((0, 4), np.float32)
                    gt_labels = np.zeros((0, num_classes), np.float32)
                else:
                    gt_bboxes = np.asarray(gt['bboxes'], np.float32)
                    gt_labels = np.asarray(gt['labels'], np.float32)
                info_dict = dict(
                    video_id=video,
                    timestamp=int(frame),
                    img_key=key,
                    ori_shape=resolution,
                    total_frames=nframes,
                    shot_info=(0, nframes),
                    fps=1,
                    timestamp_start=FIRST_FRAME,
                    filename_tmpl=self.filename_tmpl,
                    proposals=boxes,
                    proposal_scores=scores,
                    gt_bboxes=gt_bboxes,
                    gt_labels=gt_labels,
                    entity_ids=np.arange(len(gt_bboxes)),
                    cat_ids=sorted(np.flatnonzero(gt_labels.any(axis=0)).tolist()),
                )
                if self.use_frames:
                    # SampleAVAFrames gives 0-based indices; frame files start at 1.
                    info_dict.update(frame_dir=media, offset=FIRST_FRAME)
                else:
                    info_dict.update(filename=media)
                data_list.append(info_dict)
        self._report_empty(empty)
        return data_list

    def _report_empty(self, empty: List[str]) -> None:
        if not empty:
            return
        examples = empty[:NUM_EXAMPLES_IN_MESSAGE]
        message = (
            f'{self.ann_file}: {len(empty)} key frames have no proposal with score >= '
            f'{self.person_det_score_thr} in {self.proposal_file} (e.g. {examples})'
        )
        if self.empty_proposal_policy == 'error':
            raise ValueError(
                message + "; set empty_proposal_policy='skip' to drop them or "
                "'keep' to keep them without boxes"
            )
        logger = MMLogger.get_current_instance()
        if self.empty_proposal_policy == 'skip':
            self.skipped_frames = empty
            logger.warning(
                message + '; they are left out (no boxes -> no detections there; '
                'no full-frame box is substituted)'
            )
        else:
            logger.warning(message + '; they are kept with zero proposals')

    # ------------------------------------------------------------------ queries
    def get_cat_ids(self, idx: int) -> List[int]:
        """Label indices present on key frame ``idx`` (used by the class-balanced sampler)."""
        return list(self.get_data_info(idx)['cat_ids'])

    def class_counts(self) -> Counter:
        """Number of key frames that contain each label index."""
        counts: Counter = Counter()
        for idx in range(len(self)):
            counts.update(self.get_cat_ids(idx))
        return counts
