"""Mail that accounts send because something happened elsewhere: members learn that their company's
registration was rejected; staff learn that a company asks for an introduction to a lead. Subscribed to
the other domains' events in ``app.py``; sent by jobs after the commit."""

from functools import partial
from uuid import UUID

from partnermatch import jobs
from partnermatch.accounts.repository import UserRepository
from partnermatch.companies.events import CompanyStatusChanged
from partnermatch.companies.repository import CompanyRepository
from partnermatch.events import Session
from partnermatch.interactions.events import IntroductionRequested
from partnermatch.jobs import Job, JobContext
from partnermatch.leads.repository import LeadRepository
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


async def introduction_requested(session: Session, event: IntroductionRequested) -> None:
    jobs.after_commit(
        session,
        Job(
            ("accounts.introduction", f"{event.company_id}:{event.lead_id}"),
            partial(tell_staff_of_introduction, company_id=event.company_id, lead_id=event.lead_id),
        ),
    )


async def tell_staff_of_introduction(context: JobContext, company_id: UUID, lead_id: UUID) -> None:
    """Job: every active staff account learns which company asks to meet which lead's organisation."""
    async with context.sessions() as session:
        company = await CompanyRepository(session=session).get_one_or_none(id=company_id)
        lead = await LeadRepository(session=session).get_one_or_none(id=lead_id)
        if company is None or lead is None:
            return
        emails = await UserRepository(session=session).staff_emails()
        subject = f"Introduction requested: {company.name} and {lead.organization}"
        body = (
            f"{company.name} asks for an introduction to {lead.organization} ({lead.city_id}) about the lead "
            f'"{lead.title}".\n\n'
            f"Company: {context.settings.public_url}/api/v1/companies/{company.id}\n"
            f"Lead: {context.settings.public_url}/api/v1/leads/{lead.id}\n"
            f"Contact: {company.contact_email or 'no contact address in the profile; see its members'}\n"
        )
    mailer = mailer_for(context.settings)
    for email in emails:
        await mailer.send(Mail(to=email, subject=subject, body=body))
