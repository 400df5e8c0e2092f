"""`partnermatch companies`: the staff console for registrations, so that approving a company does not
need an HTTP client. The changes go through the same service as `POST /api/v1/companies/{id}/status`,
with the same events: an approved company's recommendations are computed and a rejected company's
members are mailed the reason, by the same jobs, run here once the change has committed."""

from uuid import UUID

import click
from rich.markup import escape

from partnermatch import jobs
from partnermatch.accounts.service import AccountService
from partnermatch.app import subscribe_to_events
from partnermatch.audit.recorder import Actor, acting_as, install
from partnermatch.background.service import command_runner
from partnermatch.cli import console, run
from partnermatch.commands.jobs import job_context
from partnermatch.companies.repository import CompanyFilters
from partnermatch.companies.schemas import StatusChange
from partnermatch.companies.service import CompanyService
from partnermatch.db import session_scope
from partnermatch.enums import CompanyStatus
from partnermatch.recommendations.refresh import COMPANY_JOB
from partnermatch.settings import Settings, get_settings

LISTED = 200


@click.group()
def companies() -> None:
    """Staff console: list registrations, approve or reject a company."""


async def _list(settings: Settings, status: CompanyStatus) -> None:
    async with session_scope(settings) as session:
        found, total = await CompanyService(session=session).search(
            CompanyFilters(status=status.value, order_by="registered_at", limit=LISTED)
        )
        for company in found:
            registered = company.registered_at.strftime("%Y-%m-%d %H:%M") if company.registered_at else "-"
            sectors = ", ".join(company.sectors) or "-"
            cities = ", ".join(company.target_cities) or "-"
            reason = f"  reason: {company.status_reason}" if company.status_reason else ""
            console.print(
                f"{company.id}  {registered}  {escape(company.name)}  sectors {sectors}  cities {cities}"
                f"{escape(reason)}",
                highlight=False,
            )
    shown = f"the first {len(found)} of " if total > len(found) else ""
    console.print(f"{shown}{total} {status.value} companies, oldest registration first", highlight=False)


@companies.command("list")
@click.option(
    "--status",
    type=click.Choice([s.value for s in CompanyStatus]),
    default=CompanyStatus.PENDING.value,
    show_default=True,
    help="Which registrations",
)
def list_command(status: str) -> None:
    """Companies by status (the pending ones, waiting for a decision, unless told otherwise)."""
    run(_list(get_settings(), CompanyStatus(status)))


async def _set_status(
    settings: Settings, company_id: UUID, staff_email: str, change: StatusChange
) -> tuple[str, list[str]]:
    """The company's name, and the names of the jobs its change started (run here, or queued)."""
    install()
    subscribe_to_events()
    async with job_context(settings) as context:
        with jobs.collecting() as started:
            async with context.sessions.begin() as session:
                staff = await AccountService(session, settings=settings).staff_principal(staff_email)
                with acting_as(Actor(staff.user_id, None, f"partnermatch companies {change.status.value}")):
                    company = await CompanyService(session=session).set_status(company_id, change, staff)
                    await session.flush()
                name = company.name
        async with command_runner(context) as runner:
            await runner.enqueue(started)
    return name, [job.name for job in started]


staff_option = click.option(
    "--as",
    "staff_email",
    required=True,
    help="Your staff account's email: the change is recorded in the audit log under it",
)


@companies.command("approve")
@click.argument("company_id", type=click.UUID)
@staff_option
def approve_command(company_id: UUID, staff_email: str) -> None:
    """Approve a company: its members get recommendations, computed now."""
    change = StatusChange(status=CompanyStatus.APPROVED)
    settings = get_settings()
    name, started = run(_set_status(settings, company_id, staff_email, change))
    if COMPANY_JOB in started:
        where = "queued for the workers" if settings.queue_url else "ready in the portal"
        console.print(f"approved {escape(name)}: its recommendations are {where}", highlight=False)
    else:
        console.print(
            f"approved {escape(name)}: no ranking model is active yet, its recommendations come with the "
            "first `partnermatch train`",
            highlight=False,
        )


@companies.command("reject")
@click.argument("company_id", type=click.UUID)
@staff_option
@click.option("--reason", required=True, help="Why: mailed to the company's members and shown in the portal")
def reject_command(company_id: UUID, staff_email: str, reason: str) -> None:
    """Reject a registration (or archive an approved company), with the reason its members are told."""
    change = StatusChange(status=CompanyStatus.ARCHIVED, reason=reason)
    name, _started = run(_set_status(get_settings(), company_id, staff_email, change))
    console.print(
        f"archived {escape(name)}; the members of a registration still pending are mailed the reason",
        highlight=False,
    )
