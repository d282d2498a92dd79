"""Keep one submodule's weights of a checkpoint, e.g. the backbone of a pretraining run.

Usage::

    python tools/extract_weights.py work_dirs/<pretraining run>/epoch_5.pth \\
        work_dirs/<pretraining run>/backbone.pth [--prefix backbone.]

The output loads into a detector with ``model.init_cfg=dict(type='Pretrained',
checkpoint=...)`` and fills only that submodule (see
``pcca_plugin.models.extract_submodule_weights``).
"""

import argparse
from typing import List, Optional

from pcca_plugin.models.checkpoint_surgery import extract_submodule_weights
from pcca_plugin.utils.cli import add_debug_argument, run_cli


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('checkpoint', help='an mmengine checkpoint')
    parser.add_argument('out_file', help='where to write the kept weights')
    parser.add_argument('--prefix', default='backbone.', help='names to keep (default backbone.)')
    args = add_debug_argument(parser).parse_args(argv)
    summary = extract_submodule_weights(args.checkpoint, args.out_file, prefix=args.prefix)
    print(
        f'{summary["num_tensors"]} tensors ({summary["num_values"]} values) named '
        f'{args.prefix}* -> {summary["out_file"]}'
    )


if __name__ == '__main__':
    run_cli(main)
