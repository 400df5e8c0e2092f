"""The digests' tests use the recommendations' trained model and data, and the outbox's SMTP server."""

from tests.outbox.test_outbox import mail_settings, smtp
from tests.recommendations.conftest import active_model, imported, trial

__all__ = ["active_model", "imported", "mail_settings", "smtp", "trial"]
