"""Mail that accounts send because something happened elsewhere: members learn that their company's
registration was rejected. Subscribed to the companies' events in ``app.py``."""

from functools import partial
from uuid import UUID

from partnermatch import jobs
from partnermatch.accounts.repository import UserRepository
from partnermatch.companies.events import CompanyStatusChanged
from partnermatch.companies.repository import CompanyRepository
from partnermatch.events import Session
from partnermatch.jobs import Job, JobContext
from partnermatch.mail import Mail, mailer_for


async def company_status_changed(session: Session, event: CompanyStatusChanged) -> None:
    if event.rejected:
        # After the commit: a rejection that is rolled back must not have told anyone.
        jobs.after_commit(
            session,
            Job(
                ("accounts.rejection", str(event.company_id)),
                partial(tell_members_of_rejection, company_id=event.company_id),
            ),
        )


async def tell_members_of_rejection(context: JobContext, company_id: UUID) -> None:
    """Job: mail every active member of a rejected company the reason staff gave."""
    async with context.sessions() as session:
        company = await CompanyRepository(session=session).get_one_or_none(id=company_id)
        if company is None:
            return
        emails = await UserRepository(session=session).member_emails(company_id)
        name, reason = company.name, company.status_reason or "no reason was given"
    mailer = mailer_for(context.settings)
    for email in emails:
        await mailer.send(
            Mail(
                to=email,
                subject=f"Your registration of {name} on PartnerMatch",
                body=f"We are sorry: the registration of {name} was not approved.\n\n"
                f"Reason: {reason}\n\nReply to this message if you have questions.\n",
            )
        )
