"""The tiny PCCA and linear detectors exported once per session, by the tool, with --verify."""

import pytest

from pcca_plugin.testing import run_tool
from pcca_plugin.testing.deployment import (
    TINY_LINEAR,
    TINY_PCCA,
    TOY_INPUT_SIZE,
    save_plain_state_dict,
)


def export(config, checkpoint, out):
    size = [str(s) for s in TOY_INPUT_SIZE]
    result = run_tool(
        'deployment/export_onnx.py', config, checkpoint, '--out', out, '--input-size', *size,
        '--verify',
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(config=config, checkpoint=checkpoint, onnx=out, stdout=result.stdout)


@pytest.fixture(scope='session')
def exported_pcca(tiny_checkpoint, tmp_path_factory):
    """The tiny PCCA detector from an mmengine checkpoint ({'state_dict': ...})."""
    return export(TINY_PCCA, tiny_checkpoint, str(tmp_path_factory.mktemp('onnx') / 'pcca.onnx'))


@pytest.fixture(scope='session')
def exported_linear(tmp_path_factory):
    """The tiny linear detector from a plain state dict saved with torch.save."""
    folder = tmp_path_factory.mktemp('onnx_linear')
    checkpoint = save_plain_state_dict(TINY_LINEAR, str(folder / 'linear_state_dict.pth'))
    return export(TINY_LINEAR, checkpoint, str(folder / 'linear.onnx'))


@pytest.fixture(scope='session', params=['pcca', 'linear'])
def exported(request):
    """Each exported tiny detector in turn."""
    return request.getfixturevalue(f'exported_{request.param}')
