"""MultiSports GT -> COCO person annotations (tools/data/multisports/to_coco.py)."""

import json

import numpy as np
import pytest

from pcca_plugin.proposals.coco_format import multisports_to_coco, write_coco_files
from pcca_plugin.testing import run_tool
from pcca_plugin.utils.pickle_io import dump_pickle


def _tiny_gt():
    # One 100x200 (h x w) video; two tubes share frame 2 and both contain the same box there.
    tube_a = np.array([[1, 10, 20, 30, 60], [2, 12, 20, 32, 60], [3, 14, 20, 34, 60]], np.float32)
    tube_b = np.array([[2, 12, 20, 32, 60], [3, 150, 50, 220, 120]], np.float32)
    return dict(
        labels=['x', 'y'],
        train_videos=[['s/v1']],
        test_videos=[['s/v1']],
        nframes={'s/v1': 3},
        resolution={'s/v1': (100, 200)},
        gttubes={'s/v1': {0: [tube_a], 1: [tube_b]}},
    )


def test_conversion_by_hand():
    coco, stats = multisports_to_coco(_tiny_gt(), ['s/v1'])
    assert [img['file_name'] for img in coco['images']] == [
        's/v1/img_00001.jpg',
        's/v1/img_00002.jpg',
        's/v1/img_00003.jpg',
    ]
    assert all(img['width'] == 200 and img['height'] == 100 for img in coco['images'])
    by_image = {}
    for ann in coco['annotations']:
        by_image.setdefault(ann['image_id'], []).append(ann['bbox'])
    assert by_image[1] == [[10.0, 20.0, 20.0, 40.0]]
    # The box shared by both tubes in frame 2 is written once.
    assert by_image[2] == [[12.0, 20.0, 20.0, 40.0]]
    # Frame 3: the second box is clipped to the 200 x 100 image: x2 220 -> 200, y2 120 -> 100.
    assert sorted(by_image[3]) == [[14.0, 20.0, 20.0, 40.0], [150.0, 50.0, 50.0, 50.0]]
    assert coco['categories'] == [{'id': 1, 'name': 'person', 'supercategory': 'person'}]
    assert {ann['category_id'] for ann in coco['annotations']} == {1}
    assert [ann['id'] for ann in coco['annotations']] == [1, 2, 3, 4]
    assert stats == {'videos': 1, 'images': 3, 'annotations': 4, 'dropped_empty_boxes': 0}
    sampled, _ = multisports_to_coco(_tiny_gt(), ['s/v1'], frame_interval=2)
    assert [img['frame'] for img in sampled['images']] == [1, 3]


def test_boxes_outside_the_image_are_dropped():
    gt = _tiny_gt()
    gt['gttubes']['s/v1'][1] = [np.array([[3, 250, 10, 260, 20]], np.float32)]
    coco, stats = multisports_to_coco(gt, ['s/v1'])
    assert stats['dropped_empty_boxes'] == 1
    assert all(ann['bbox'][2] > 0 and ann['bbox'][3] > 0 for ann in coco['annotations'])


def test_cli_on_toy_sports_matches_gt_and_loads_in_pycocotools(toy_data, toy_coco):
    from pycocotools.coco import COCO

    gt = toy_data['gt']
    for split, videos in (('train', toy_data['train_videos']), ('val', toy_data['val_videos'])):
        with open(toy_coco[split]) as f:
            coco = json.load(f)
        expected_frames = set()
        expected_boxes = set()
        for video in videos:
            for tubes in gt['gttubes'][video].values():
                for tube in tubes:
                    for frame, x1, y1, x2, y2 in tube.tolist():
                        expected_frames.add((video, int(frame)))
                        expected_boxes.add((video, int(frame), x1, y1, x2 - x1, y2 - y1))
        assert {(img['video'], img['frame']) for img in coco['images']} == expected_frames
        images = {img['id']: img for img in coco['images']}
        boxes = {
            (images[a['image_id']]['video'], images[a['image_id']]['frame'], *a['bbox'])
            for a in coco['annotations']
        }
        assert boxes == expected_boxes
        api = COCO(toy_coco[split])
        assert api.getCatIds(catNms=['person']) == [1]
        assert len(api.getImgIds()) == len(expected_frames)


def test_cli_reports_missing_frames(toy_data, tmp_path):
    empty_root = tmp_path / 'no_frames'
    empty_root.mkdir()
    with pytest.raises(FileNotFoundError, match=r'_val\.json: \d+ of \d+ frames are missing'):
        write_coco_files(
            toy_data['gt_file'], str(tmp_path), splits=['val'], frame_root=str(empty_root)
        )


def test_cli_rejects_a_gt_file_without_its_keys(tmp_path):
    bad = str(tmp_path / 'bad_GT.pkl')
    dump_pickle({'labels': []}, bad)
    with pytest.raises(KeyError, match='bad_GT.pkl: MultiSports GT is missing the keys'):
        write_coco_files(bad, str(tmp_path))
    # The command line: the same message in one line, exit status 1, no traceback.
    result = run_tool('data/multisports/to_coco.py', bad, '--out-dir', str(tmp_path))
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith('to_coco.py: error: ')
    assert 'bad_GT.pkl: MultiSports GT is missing the keys' in last
