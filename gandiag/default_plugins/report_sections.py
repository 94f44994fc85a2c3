"""The built-in HTML report sections (gandiag.report.sections), registered like any plugin's."""

from gandiag import hookimpl


@hookimpl(trylast=True)
def register_report_sections(register):
    from ..report.sections import BUILTIN_SECTIONS

    for cls in BUILTIN_SECTIONS:
        register(cls())
