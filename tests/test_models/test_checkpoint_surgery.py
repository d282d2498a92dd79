"""extract_submodule_weights: a detector takes a backbone from another model's checkpoint."""

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel

from pcca_plugin.models.checkpoint_surgery import extract_submodule_weights
from pcca_plugin.testing import run_tool


class Source(BaseModel):
    """A 'pretraining' model: backbone + a head whose shape matches the target's head."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.roi_head = nn.Linear(4, 2)

    def forward(self, *args, **kwargs):
        raise NotImplementedError


class Target(Source):
    """The detector: the same backbone and a same-shaped head, initialised from a file."""

    def __init__(self, checkpoint):
        super().__init__()
        self.init_cfg = dict(type='Pretrained', checkpoint=checkpoint)


def test_only_the_backbone_is_kept_and_loads_into_a_model(tmp_path):
    torch.manual_seed(0)
    source = Source()
    source.backbone[1].running_mean += 3.0  # a buffer that must travel too
    full = str(tmp_path / 'pretrain.pth')
    torch.save(dict(state_dict=source.state_dict(), meta=dict(epoch=5)), full)
    out = str(tmp_path / 'weights' / 'backbone.pth')
    summary = extract_submodule_weights(full, out, prefix='backbone.')
    assert summary['num_values'] == sum(v.numel() for v in source.backbone.state_dict().values())
    saved = torch.load(out)  # torch's default weights_only=True
    assert set(saved['state_dict']) == {f'backbone.{k}' for k in source.backbone.state_dict()}
    assert saved['meta'] == dict(source=full, prefix='backbone.')

    torch.manual_seed(1)
    target = Target(out)
    head_before = target.roi_head.weight.clone()
    target.init_weights()
    for name, value in source.backbone.state_dict().items():
        assert torch.equal(target.backbone.state_dict()[name], value), name
    # The same-shaped head was not overwritten by the pretraining head.
    assert not torch.equal(target.roi_head.weight, source.roi_head.weight)
    assert torch.equal(target.roi_head.weight, head_before)


def test_bad_inputs_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        extract_submodule_weights(str(tmp_path / 'missing.pth'), str(tmp_path / 'out.pth'))
    path = str(tmp_path / 'heads_only.pth')
    torch.save(dict(state_dict={'roi_head.weight': torch.zeros(2)}), path)
    with pytest.raises(KeyError, match=r"no weights named 'backbone\.'.*\['roi_head'\]"):
        extract_submodule_weights(path, str(tmp_path / 'out.pth'))
    assert not (tmp_path / 'out.pth').exists()


def test_command_line_tool(tmp_path, repo_root):
    source = str(tmp_path / 'pretrain.pth')
    torch.save(dict(state_dict=Source().state_dict(), meta={}), source)
    out = str(tmp_path / 'backbone.pth')
    result = run_tool('extract_weights.py', source, out, cwd=repo_root)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f'-> {out}' in result.stdout
    assert all(k.startswith('backbone.') for k in torch.load(out)['state_dict'])
    # A missing checkpoint: the package's one-line error, exit status 1.
    missing = str(tmp_path / 'missing.pth')
    result = run_tool('extract_weights.py', missing, out, cwd=repo_root)
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(f'extract_weights.py: error: {missing}: no such checkpoint')
    )
