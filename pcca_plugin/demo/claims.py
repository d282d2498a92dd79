"""The paper's claims the demo checks on every seed, and their PASS / FAIL lines.

The claims (:data:`CLAIMS`) come from the paper's Table 1 and its decoupled
training: PCCA beats the linear head; its gain is larger on the
classes told apart by context than on the classes told apart by motion (the
toy's stand-in for "context helps"); phase 2 raises the tail classes. Each is
a test of one seed's differences (:func:`claim_differences`); a claim holds
when it holds on every seed.
"""

import json
import os.path as osp
from typing import Dict, List, Sequence

from .settings import ClaimNotReproduced

#: The paper's claims the demo checks on every seed: (name, statement).
CLAIMS = (
    ('pcca_beats_linear', 'PCCA beats linear on F@0.5 on every seed'),
    (
        'gain_larger_on_context',
        'the gain of PCCA over linear is larger on the context classes than on the '
        'motion classes on every seed',
    ),
    ('phase2_raises_tail', 'phase 2 raises the mean AP of the tail classes on every seed'),
)


def claim_differences(table: Dict, group_ap: Dict, frame_key: str) -> Dict[str, float]:
    """The paper's claims as differences: PCCA - linear, and phase 2 - PCCA on the tail.

    Args:
        table: model -> metric key -> figure (a seed's ``results.json`` ``table``).
        group_ap: model -> class group -> mean frame AP (its ``group_frame_ap``).
        frame_key: the frame-mAP key of ``table`` (``'frame_mAP@0.5'``).

    Returns:
        ``pcca_minus_linear``, ``pcca_minus_linear_motion``,
        ``pcca_minus_linear_context``, ``phase2_tail_gain``.
    """
    return dict(
        pcca_minus_linear=table['pcca'][frame_key] - table['linear'][frame_key],
        pcca_minus_linear_motion=group_ap['pcca']['motion'] - group_ap['linear']['motion'],
        pcca_minus_linear_context=group_ap['pcca']['context'] - group_ap['linear']['context'],
        phase2_tail_gain=group_ap['decoupled']['tail'] - group_ap['pcca']['tail'],
    )


def check_claims(checks: Dict[str, Dict[str, float]], seeds: Sequence) -> List[Dict]:
    """The paper's claims (:data:`CLAIMS`), each tested on every seed.

    * ``pcca_beats_linear``: PCCA - linear frame-mAP@0.5 > 0;
    * ``gain_larger_on_context``: PCCA - linear on the context classes' mean AP >
      PCCA - linear on the motion classes' mean AP;
    * ``phase2_raises_tail``: phase 2 - PCCA on the tail classes' mean AP > 0.

    A missing figure (NaN) fails its claim.

    Args:
        checks: seed (as a string) -> the differences of :func:`claim_differences`.
        seeds: the seeds, in order.

    Returns:
        One dict per claim: ``name``, ``statement``, ``passed`` (every seed),
        ``seeds``: seed -> ``dict(passed, figures)`` (the figures as text).
    """
    tests = dict(
        pcca_beats_linear=lambda c: (
            c['pcca_minus_linear'] > 0,
            f'{c["pcca_minus_linear"]:+.2f}',
        ),
        gain_larger_on_context=lambda c: (
            c['pcca_minus_linear_context'] > c['pcca_minus_linear_motion'],
            f'context {c["pcca_minus_linear_context"]:+.2f} vs motion '
            f'{c["pcca_minus_linear_motion"]:+.2f}',
        ),
        phase2_raises_tail=lambda c: (c['phase2_tail_gain'] > 0, f'{c["phase2_tail_gain"]:+.2f}'),
    )
    claims = []
    for name, statement in CLAIMS:
        per_seed = {}
        for seed in seeds:
            passed, figures = tests[name](checks[str(seed)])
            per_seed[str(seed)] = dict(passed=bool(passed), figures=figures)
        claims.append(
            dict(
                name=name,
                statement=statement,
                passed=all(entry['passed'] for entry in per_seed.values()),
                seeds=per_seed,
            )
        )
    return claims


def claim_lines(claims: Sequence[Dict]) -> List[str]:
    """One ``PASS: ...`` / ``FAIL: ...`` line per claim, with every seed's figures."""
    lines = []
    for claim in claims:
        figures = '; '.join(
            f'seed {seed} {entry["figures"]}' + ('' if entry['passed'] else ' (fails)')
            for seed, entry in claim['seeds'].items()
        )
        lines.append(f'{"PASS" if claim["passed"] else "FAIL"}: {claim["statement"]} ({figures})')
    return lines


def check_paper_claims(results_json: str, enforce: bool) -> None:
    """Print the claims of a summary ``results.json`` as PASS / FAIL lines.

    Args:
        results_json: the summary of :func:`pcca_plugin.demo.report.write_summary`.
        enforce: raise when a claim failed (the full demo); ``--quick`` only prints.

    Raises:
        ClaimNotReproduced: ``enforce`` and a claim failed; the message names
            each failed claim with its figures and the report.
    """
    with open(results_json, encoding='utf-8') as f:
        claims = json.load(f)['claims']
    mode = '' if enforce else ' (--quick: printed, not enforced)'
    print(f"\n[demo] the paper's claims, seed by seed{mode}:")
    for line in claim_lines(claims):
        print(f'[demo] {line}')
    failed = [claim for claim in claims if not claim['passed']]
    if enforce and failed:
        results_md = osp.join(osp.dirname(results_json), 'results.md')
        raise ClaimNotReproduced(
            f"{len(failed)} of the paper's {len(claims)} claims FAILED on this run:\n  "
            + '\n  '.join(claim_lines(failed))
            + f'\nEvery output is written; the figures are in {results_md}. The documented '
            'run (docs/results.md) passes all of them: a failure means this checkout, its '
            'package versions or its settings do not reproduce it.'
        )
