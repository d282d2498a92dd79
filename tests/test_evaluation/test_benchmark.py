"""The MultiSports-sized benchmark case: valid official files, the documented size, seeded."""

import numpy as np

from pcca_plugin.evaluation import benchmark
from pcca_plugin.evaluation.functional import check_frame_detections, load_ground_truth


def test_generated_case_is_valid_and_seeded():
    gt, dets = benchmark.generate(2)
    assert len(gt['labels']) == 66 and gt['test_videos'][0] == ['sport0/v_0000', 'sport1/v_0001']
    per_video = benchmark.FRAMES_PER_VIDEO * benchmark.PERSONS_PER_FRAME
    assert dets.shape == (2 * per_video * benchmark.CLASSES_PER_BOX, 8)
    ground_truth = load_ground_truth(gt)
    assert len(ground_truth.tubes) >= 2 * (benchmark.GT_TUBES_PER_VIDEO // 2)
    check_frame_detections(dets, ground_truth, 'benchmark')  # raises on a bad row
    again = benchmark.generate(2)[1]
    np.testing.assert_array_equal(dets, again)
    # Every person box is scored for 3 different classes of its video's sport.
    classes = dets[:, 2].reshape(-1, benchmark.CLASSES_PER_BOX)
    assert all(len(set(row)) == benchmark.CLASSES_PER_BOX for row in classes[:1000].tolist())


def test_table_has_the_documented_columns_and_rows():
    row = dict(wall_s=2.0, in_process_s=1.0, peak_mib=100.0)
    table = benchmark.format_table(dict.fromkeys(benchmark.ROWS, row)).splitlines()
    assert table[0] == '| command | CLI wall s | in-process s | peak RSS MiB |'
    assert [line.split(' | ')[0][2:] for line in table[2:]] == list(benchmark.ROWS)
