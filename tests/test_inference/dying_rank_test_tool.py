"""tools/test.py with a hook that kills rank 1 after its first test iteration (for the tests).

Run under torchrun: ``python -m torch.distributed.run --nproc_per_node 2 THIS CONFIG CKPT
--launcher pytorch ...``.
"""

import os
import sys

from mmengine.hooks import Hook

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import load_tool  # noqa: E402

#: Exit status of the rank that dies.
DEATH_STATUS = 3
DYING_RANK = 1

test_tool = load_tool('tools/test.py', 'pcca_tools_test')


class DieHook(Hook):
    """Ends the process of one rank abruptly, as an out-of-memory kill would."""

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.rank == DYING_RANK:
            os._exit(DEATH_STATUS)


class DyingRunner(test_tool.Runner):
    @classmethod
    def from_cfg(cls, cfg):
        runner = super().from_cfg(cfg)
        runner.register_hook(DieHook())
        return runner


test_tool.Runner = DyingRunner

if __name__ == '__main__':
    test_tool.main()
