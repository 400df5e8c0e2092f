"""What the interactions service publishes (``partnermatch.events``) after it recorded something."""

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True)
class IntroductionRequested:
    """A company asked the agency to introduce it to a lead's organisation (feedback ``contacted``)."""

    company_id: UUID
    lead_id: UUID
