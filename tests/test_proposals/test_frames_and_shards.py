"""Frame sources (OpenCV videos, frame folders) and proposal shards: happy paths and bad input."""

import os
import os.path as osp

import cv2
import numpy as np
import pytest

from pcca_plugin.proposals.frames import (
    EmptyFrameSourceError,
    FrameDecodeError,
    FrameSource,
    iter_frames,
    resolve_sources,
    sources_from_paths,
)
from pcca_plugin.proposals.shards import (
    CorruptShardError,
    ShardSettingsMismatch,
    merge_shards,
    read_shard,
    shard_path,
    write_shard,
)
from pcca_plugin.utils.multisports_format import frame_key

SETTINGS = {'checkpoint': 'det.pth', 'frame_interval': 1}


def test_video_and_folder_give_every_frame(toy_data):
    video = toy_data['val_videos'][0]
    num_frames = toy_data['gt']['nframes'][video]
    height, width = toy_data['gt']['resolution'][video]
    from_video = list(
        iter_frames(FrameSource(video, osp.join(toy_data['root'], 'videos', video + '.mp4')))
    )
    from_folder = list(
        iter_frames(FrameSource(video, osp.join(toy_data['root'], 'rawframes', video)))
    )
    assert [f for f, _ in from_video] == list(range(1, num_frames + 1))
    assert [f for f, _ in from_folder] == list(range(1, num_frames + 1))
    for (_, a), (_, b) in zip(from_video, from_folder):
        assert a.shape == b.shape == (height, width, 3)
        assert a.dtype == b.dtype == np.uint8
        # mp4 and JPEG are both lossy, but they show the same picture.
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 10
    every_third = [
        f
        for f, _ in iter_frames(
            FrameSource(video, osp.join(toy_data['root'], 'rawframes', video)), frame_interval=3
        )
    ]
    assert every_third == list(range(1, num_frames + 1, 3))


def test_bad_video_and_folders_name_the_file(tmp_path):
    garbage = tmp_path / 'broken.mp4'
    garbage.write_bytes(b'this is not a video' * 50)
    with pytest.raises((FrameDecodeError, EmptyFrameSourceError), match='broken.mp4'):
        list(iter_frames(FrameSource('s/broken', str(garbage))))
    empty = tmp_path / 'empty_frames'
    empty.mkdir()
    (empty / 'notes.txt').write_text('no images here')
    with pytest.raises(EmptyFrameSourceError, match='empty_frames: frame folder holds no image'):
        list(iter_frames(FrameSource('s/empty', str(empty))))
    bad_image_dir = tmp_path / 'bad_image'
    bad_image_dir.mkdir()
    cv2.imwrite(str(bad_image_dir / 'img_00001.jpg'), np.zeros((8, 8, 3), np.uint8))
    (bad_image_dir / 'img_00002.jpg').write_bytes(b'\xff\xd8 truncated')
    with pytest.raises(FrameDecodeError, match='img_00002.jpg: OpenCV cannot read'):
        list(iter_frames(FrameSource('s/bad', str(bad_image_dir))))
    with pytest.raises(FileNotFoundError, match='missing.mp4: no such video file'):
        list(iter_frames(FrameSource('s/missing', str(tmp_path / 'missing.mp4'))))


def test_naming_and_lookup_of_sources(toy_data, tmp_path):
    root = osp.join(toy_data['root'], 'videos')
    video = toy_data['val_videos'][0]
    path = osp.join(root, video + '.mp4')
    assert sources_from_paths([path], root=root) == [FrameSource(video, path)]
    assert sources_from_paths([path])[0].name == osp.basename(video)
    frame_dir = osp.join(toy_data['root'], 'rawframes', video)
    assert sources_from_paths([frame_dir], root=osp.join(toy_data['root'], 'rawframes'))[0] == (
        FrameSource(video, frame_dir)
    )
    with pytest.raises(ValueError, match='both get the video name'):
        sources_from_paths([path, osp.join(str(tmp_path), osp.basename(path))])
    found = resolve_sources([video], video_root=root, frame_root=str(tmp_path))
    assert found == [FrameSource(video, path)]
    with pytest.raises(FileNotFoundError, match="video 's/nothing'"):
        resolve_sources(['s/nothing'], video_root=root)


def _proposals(video, frames):
    return {frame_key(video, f): np.full((f % 3, 5), f / 10, np.float32) for f in frames}


def test_shard_round_trip_and_merge_order(tmp_path):
    shard_dir = str(tmp_path / 'shards')
    for video in ('s/b', 's/a'):
        write_shard(shard_path(shard_dir, video), video, _proposals(video, [1, 2, 3]), SETTINGS)
    assert osp.isfile(osp.join(shard_dir, 's', 'a.pkl'))
    assert not [name for name in os.listdir(osp.join(shard_dir, 's')) if name.endswith('.tmp')]
    loaded = read_shard(shard_path(shard_dir, 's/a'), 's/a', SETTINGS)
    assert list(loaded) == ['s/a,0001', 's/a,0002', 's/a,0003']
    assert loaded['s/a,0002'].shape == (2, 5)
    merged = merge_shards(shard_dir, ['s/b', 's/a'], SETTINGS)
    assert list(merged) == ['s/b,0001', 's/b,0002', 's/b,0003', 's/a,0001', 's/a,0002', 's/a,0003']
    with pytest.raises(FileNotFoundError, match=r"no shard for video 's/c'"):
        merge_shards(shard_dir, ['s/a', 's/c'], SETTINGS)


def test_bad_shards_raise_naming_the_file(tmp_path):
    shard_dir = str(tmp_path / 'shards')
    path = shard_path(shard_dir, 's/a')
    write_shard(path, 's/a', _proposals('s/a', [1, 2]), SETTINGS)
    with pytest.raises(
        ShardSettingsMismatch,
        match=r'a\.pkl: made with other settings '
        r'\(frame_interval: shard 1 vs now 2\)',
    ):
        read_shard(path, 's/a', dict(SETTINGS, frame_interval=2))
    with pytest.raises(CorruptShardError, match="holds video 's/a', expected 's/b'"):
        read_shard(path, 's/b', SETTINGS)
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[: len(data) // 2])  # truncated, as by a full disk
    with pytest.raises(CorruptShardError, match=r'a\.pkl: corrupted or truncated'):
        read_shard(path, 's/a', SETTINGS)
    write_shard(path, 's/a', {'s/a,0001': np.zeros((2, 4), np.float32)}, SETTINGS)
    with pytest.raises(CorruptShardError, match=r"proposals\['s/a,0001'\] is not a float32"):
        read_shard(path, 's/a', SETTINGS)
    for bad_name in ('../escape', '/abs/v', 's//v'):
        with pytest.raises(ValueError, match='cannot be used as a shard path'):
            shard_path(shard_dir, bad_name)
