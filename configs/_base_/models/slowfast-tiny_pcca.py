# A tiny SlowFast (ResNet-18 blocks, 8 + 1 base channels -> 64 + 8 = 72
# channels) with a small PCCA head, for CPU tests and the demo. Same wiring as
# the full model; only sizes shrink.
_base_ = ['./slowfast-r101_pcca.py']

model = dict(
    backbone=dict(
        resample_rate=4,
        speed_ratio=4,
        channel_ratio=8,
        slow_pathway=dict(depth=18, base_channels=8, fusion_kernel=5, inflate=(0, 0, 1, 1)),
        fast_pathway=dict(depth=18, base_channels=1),
    ),
    roi_head=dict(
        bbox_roi_extractor=dict(context_output_size=3, in_channels=72),
        bbox_head=dict(
            in_channels=72, embed_dims=32, num_layers=2, num_heads=4, context_size=3, topk=(1,)
        ),
    ),
)
