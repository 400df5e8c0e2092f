"""Mail that accounts send because something happened elsewhere: members learn that their company's
registration was rejected; staff learn that a company asks for an introduction to a lead. Subscribed to
the other domains' events in ``app.py``; written to the outbox in the transaction of the change, so a
change that is rolled back tells no one."""

from partnermatch.accounts.repository import UserRepository
from partnermatch.companies.events import CompanyStatusChanged
from partnermatch.companies.repository import CompanyRepository
from partnermatch.enums import MailKind
from partnermatch.events import Session
from partnermatch.interactions.events import IntroductionRequested
from partnermatch.leads.repository import LeadRepository
from partnermatch.outbox.service import Outbox
from partnermatch.settings import get_settings


async def company_status_changed(session: Session, event: CompanyStatusChanged) -> None:
    """Every active member of a rejected company is mailed the reason staff gave."""
    if not event.rejected:
        return
    company = await CompanyRepository(session=session).get_one_or_none(id=event.company_id)
    if company is None:
        return
    name, reason = company.name, company.status_reason or "no reason was given"
    outbox = Outbox(session)
    for user_id, email in await UserRepository(session=session).member_addresses(company.id):
        outbox.add(
            MailKind.REJECTION,
            email,
            f"Your registration of {name} on PartnerMatch",
            f"We are sorry: the registration of {name} was not approved.\n\n"
            f"Reason: {reason}\n\nReply to this message if you have questions.\n",
            user_id=user_id,
        )


async def introduction_requested(session: Session, event: IntroductionRequested) -> None:
    """Every active staff account learns which company asks to meet which lead's organisation."""
    company = await CompanyRepository(session=session).get_one_or_none(id=event.company_id)
    lead = await LeadRepository(session=session).get_one_or_none(id=event.lead_id)
    if company is None or lead is None:
        return
    public_url = get_settings().public_url
    subject = f"Introduction requested: {company.name} and {lead.organization}"
    body = (
        f"{company.name} asks for an introduction to {lead.organization} ({lead.city_id}) about the lead "
        f'"{lead.title}".\n\n'
        f"Company: {public_url}/api/v1/companies/{company.id}\n"
        f"Lead: {public_url}/api/v1/leads/{lead.id}\n"
        f"Contact: {company.contact_email or 'no contact address in the profile; see its members'}\n"
    )
    outbox = Outbox(session)
    for user_id, email in await UserRepository(session=session).staff_addresses():
        outbox.add(MailKind.INTRODUCTION, email, subject, body, user_id=user_id)
