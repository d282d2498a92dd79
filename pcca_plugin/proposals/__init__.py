"""Person proposals for MultiSports: detector wrapper, resumable generation, evaluation.

See ``docs/detector.md`` for the workflow (COCO checkpoint -> person detector
-> proposals -> AP@0.5 / AR@100) and the tools under ``tools/det/``.
"""

from .coco_format import PERSON_CATEGORY, CocoFile, multisports_to_coco, write_coco_files
from .detector import (
    DEFAULT_MIN_SCORE,
    NoPersonClassError,
    PersonDetector,
    find_person_class,
    person_only_state_dict,
    slice_person_checkpoint,
)
from .evaluation import evaluate_proposal_file_contents, evaluate_proposals, gt_person_boxes
from .evaluation_report import evaluate_proposal_files, format_proposal_table, write_results_json
from .frames import (
    EmptyFrameSourceError,
    FrameDecodeError,
    FrameSource,
    iter_frames,
    resolve_sources,
    sources_from_paths,
)
from .generation import (
    GenerationReport,
    collect_sources,
    detect_video,
    generate_proposal_file,
    generate_shards,
    shard_settings,
)
from .ground_truth import frame_person_boxes, split_videos
from .shards import (
    CorruptShardError,
    ShardSettingsMismatch,
    merge_shards,
    read_shard,
    shard_path,
    write_shard,
)

__all__ = [
    'PERSON_CATEGORY',
    'CocoFile',
    'multisports_to_coco',
    'write_coco_files',
    'evaluate_proposal_files',
    'format_proposal_table',
    'write_results_json',
    'DEFAULT_MIN_SCORE',
    'NoPersonClassError',
    'PersonDetector',
    'find_person_class',
    'person_only_state_dict',
    'slice_person_checkpoint',
    'evaluate_proposal_file_contents',
    'evaluate_proposals',
    'gt_person_boxes',
    'EmptyFrameSourceError',
    'FrameDecodeError',
    'FrameSource',
    'iter_frames',
    'resolve_sources',
    'sources_from_paths',
    'GenerationReport',
    'collect_sources',
    'detect_video',
    'generate_proposal_file',
    'generate_shards',
    'shard_settings',
    'frame_person_boxes',
    'split_videos',
    'CorruptShardError',
    'ShardSettingsMismatch',
    'merge_shards',
    'read_shard',
    'shard_path',
    'write_shard',
]
