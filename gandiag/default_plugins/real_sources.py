from gandiag import hookimpl

from ..data.sources import DigitsSource, MixtureSource, PathSource, SinesSource


@hookimpl(trylast=True)
def register_real_sources(register):
    register(DigitsSource())
    register(MixtureSource("ring8"))
    register(MixtureSource("grid25"))
    register(SinesSource())
    register(PathSource())
