"""The demo (``make demo``): PCCA end to end on generated toy-sports data, on a CPU.

* :mod:`.settings`: what runs (configs, stages, seeds, data sizes, epochs) and the errors;
* :mod:`.pipeline`: the stages of a seed, resumable, the seeds side by side, :func:`run_demo`;
* :mod:`.report`: one seed's report and the summary over seeds;
* :mod:`.claims`: the paper's claims, checked seed by seed;
* :mod:`.benchmark`: frames per second of the video demo.

The command lines are ``tools/run_demo.py`` and ``tools/demo/benchmark_demo.py``.
"""

from .benchmark import run_benchmarks
from .claims import CLAIMS, check_claims, check_paper_claims, claim_lines
from .pipeline import StageState, check_work_dir, run_demo, run_seed
from .report import report_paths, write_report, write_summary
from .settings import (
    MODEL_ROWS,
    STAGES,
    TABLE_COLUMNS,
    ClaimNotReproduced,
    DemoError,
    DemoSettings,
    seed_work_dir,
)

__all__ = [
    'CLAIMS',
    'MODEL_ROWS',
    'STAGES',
    'TABLE_COLUMNS',
    'ClaimNotReproduced',
    'DemoError',
    'DemoSettings',
    'StageState',
    'check_claims',
    'check_paper_claims',
    'check_work_dir',
    'claim_lines',
    'report_paths',
    'run_benchmarks',
    'run_demo',
    'run_seed',
    'seed_work_dir',
    'write_report',
    'write_summary',
]
