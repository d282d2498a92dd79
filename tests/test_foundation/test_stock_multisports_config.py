"""The stock mmaction2 MultiSports SlowFast detector builds and runs on CPU with the plugin."""

import os.path as osp

import torch
from mmengine.config import Config
from mmengine.structures import InstanceData

STOCK_CONFIG = (
    'detection/slowfast/slowfast_kinetics400-pretrained-r50_8xb16-4x16x1-8e_multisports-rgb.py'
)
#: Small clip so that the R50 SlowFast forward stays cheap on 2 cores: (C, T, H, W).
CLIP_SHAPE = (3, 32, 64, 64)
NUM_PROPOSALS = 2


def stock_config_path() -> str:
    import mmaction

    path = osp.join(osp.dirname(mmaction.__file__), '.mim', 'configs', STOCK_CONFIG)
    assert osp.isfile(path), f'mmaction2 config not found at {path}'
    return path


def test_stock_multisports_slowfast_forward_on_cpu():
    from mmaction.structures import ActionDataSample
    from mmaction.utils import register_all_modules
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    register_all_modules()
    cfg = Config.fromfile(stock_config_path())
    cfg.merge_from_dict(
        dict(custom_imports=dict(imports=['pcca_plugin'], allow_failed_imports=False))
    )
    cfg.model.init_cfg = None  # no download: random weights
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model).eval()

    torch.manual_seed(0)
    clip = torch.randn(1, *CLIP_SHAPE)  # (B, C, T, H, W)
    sample = ActionDataSample()
    height, width = CLIP_SHAPE[2:]
    sample.set_metainfo(dict(img_shape=(height, width)))
    sample.proposals = InstanceData(
        bboxes=torch.tensor([[4.0, 6.0, 30.0, 60.0], [20.0, 2.0, 62.0, 50.0]])
    )
    with torch.no_grad():
        results = model(clip, [sample], mode='predict')

    scores = results[0].pred_instances.scores
    assert scores.shape == (NUM_PROPOSALS, cfg.num_classes)
    assert torch.isfinite(scores).all()
    assert ((scores >= 0) & (scores <= 1)).all()  # per-class sigmoid scores
