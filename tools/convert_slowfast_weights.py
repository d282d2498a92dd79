"""Convert a pytorchvideo / PySlowFast SlowFast checkpoint to mmaction2's ``backbone.*`` layout.

Usage::

    python tools/convert_slowfast_weights.py SRC DST --format {pytorchvideo,pyslowfast}

``--format pytorchvideo``: the hub checkpoints (``SLOWFAST_8x8_R101.pyth``...);
``--format pyslowfast``: PySlowFast ``.pyth`` or Caffe2 ``.pkl`` checkpoints. Prints the
config lines the weights need. The conversion is
:mod:`pcca_plugin.models.weight_conversion` (``docs/model.md``, "Pretrained backbones").
"""

import argparse
from typing import List, Optional

from pcca_plugin.models.weight_conversion import (
    SLOWFAST_FORMATS,
    conversion_report,
    write_converted_checkpoint,
)
from pcca_plugin.utils.cli import add_debug_argument, run_cli


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='source checkpoint (.pyth, .pth or Caffe2 .pkl)')
    parser.add_argument('dst', help='where to write the mmaction2 checkpoint (.pth)')
    parser.add_argument('--format', required=True, choices=SLOWFAST_FORMATS, help='source layout')
    return add_debug_argument(parser).parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    """Convert, write ``DST`` and print the config lines; returns the conversion's meta."""
    args = parse_args(argv)
    num_tensors, meta = write_converted_checkpoint(args.src, args.dst, args.format)
    print(conversion_report(args.src, args.dst, num_tensors, meta))
    return meta


if __name__ == '__main__':
    run_cli(main)
