"""Export the action detector of a config to ONNX and print the graph's interface.

Usage::

    python tools/deployment/export_onnx.py CONFIG CHECKPOINT --out MODEL.onnx \\
        [--opset 18] [--input-size H W] [--verify]

The graph takes ``clip`` float32 ``(1, 3, T, H, W)`` (the config's data
preprocessor output) and ``boxes`` float32 ``(N, 4)`` (x1, y1, x2, y2 in the
clip's pixels, any N >= 1) and gives ``scores`` float32 ``(N, num_classes)``,
the per-class probabilities of the PyTorch predict step. Standard ``ai.onnx``
ops only (RoIAlign is ``RoiAlign``, opset >= 16). CHECKPOINT is an mmengine
checkpoint or a plain state dict saved with ``torch.save``; ``none`` (or
``--random-weights``) exports the config's random initialisation, for checking
the export only. ``--verify`` compares onnxruntime with PyTorch on a random
clip and 1, 5 and 17 boxes (max abs difference <= 1e-4). See docs/deployment.md.
"""

import argparse
from typing import List, Optional

import pcca_plugin
from pcca_plugin.utils.cli import add_debug_argument, run_cli


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    from pcca_plugin.deployment.export import DEFAULT_OPSET

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('config', help='action detector config (configs/pcca/...)')
    parser.add_argument('checkpoint', help="checkpoint or state dict; 'none': random weights")
    parser.add_argument('--out', required=True, help='the .onnx file to write')
    parser.add_argument('--opset', type=int, default=DEFAULT_OPSET, help='ai.onnx opset (>= 16)')
    parser.add_argument(
        '--input-size', type=int, nargs=2, metavar=('H', 'W'),
        help="the clip's size (default: the config's short side at 16:9, e.g. 256 455)",
    )  # fmt: skip
    parser.add_argument('--random-weights', action='store_true', help='as CHECKPOINT none')
    parser.add_argument('--verify', action='store_true', help='compare onnxruntime with PyTorch')
    return add_debug_argument(parser).parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    from pcca_plugin.deployment import export, verify

    export.check_opset(args.opset)
    pcca_plugin.register_all_modules()
    checkpoint = export.NO_CHECKPOINT if args.random_weights else args.checkpoint
    model, cfg = export.build_detector(args.config, checkpoint)
    clip_shape = export.clip_shape_from_config(cfg, args.input_size)
    export.export_onnx(export.ExportableDetector(model), args.out, clip_shape, args.opset)
    print(f'{args.out}: onnx.checker passed')
    print(export.describe_onnx(args.out))
    if args.verify:
        checks = verify.verify_onnx(model, args.out)
        print('\n'.join(f'verify {check}' for check in checks))
        if not all(check.passed for check in checks):
            raise RuntimeError(f'{args.out}: onnxruntime differs from PyTorch by more than 1e-4')


if __name__ == '__main__':
    run_cli(main)
