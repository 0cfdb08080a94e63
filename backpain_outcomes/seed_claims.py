"""Former home of :func:`evaluate_seed_claims`; everything now lives in :mod:`backpain_outcomes.claims`.

Kept only so that ``from backpain_outcomes.seed_claims import ...`` keeps working until the
package's ``__init__`` imports from :mod:`backpain_outcomes.claims`; to be deleted then.
"""

from .claims import ClaimReport, evaluate_seed_claims
from .survival import cox_by_group

__all__ = ["ClaimReport", "evaluate_seed_claims", "cox_by_group"]
