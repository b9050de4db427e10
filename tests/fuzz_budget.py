"""How many examples the fuzz tests (tests/test_fuzz_*.py) run: few by default, many in a campaign.

The default suite must stay short on a loaded two-core machine, so each fuzz test names its own small
budget.  A campaign sets ``CHAMBER_FUZZ_EXAMPLES`` and every fuzz test then runs that many examples:

    CHAMBER_FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/test_fuzz_*.py --hypothesis-show-statistics

(docs/reliability/fuzzing.md gives the counts of the last campaign).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

CAMPAIGN = int(os.environ.get("CHAMBER_FUZZ_EXAMPLES", "0") or 0)


def budget(default: int, **more: object) -> settings:
    """Hypothesis settings for a fuzz test: ``default`` examples, or the campaign's count."""
    return settings(
        max_examples=CAMPAIGN or default,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
        **more,  # type: ignore[arg-type]
    )
