"""The portal's one Jinja environment: templates, the gettext callables of ``i18n`` and the formatters."""

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template import TemplateConfig

from partnermatch.portal import i18n

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
# The pinned htmx release served from STATIC (see tests/portal/test_static.py for its hash).
HTMX = "htmx-2.0.11.min.js"


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        # Templates ship with the package and change only with a release: not checked on disk at every
        # render (40 stat calls for one recommendations page).
        auto_reload=False,
    )
    # Newstyle: the callables translate (and format) themselves, reading the request's language each time.
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(
        _=i18n.template_gettext,
        gettext=i18n.template_gettext,
        ngettext=i18n.template_ngettext,
        pgettext=i18n.pgettext,
        sector_name=i18n.sector_name,
        city_name=i18n.city_name,
        reason_text=i18n.reason_text,
        htmx=HTMX,
    )
    env.filters.update(
        day=i18n.day, short_day=i18n.short_day, instant=i18n.instant, number=i18n.number, euros=i18n.euros
    )
    return env


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(instance=JinjaTemplateEngine(engine_instance=environment()))
