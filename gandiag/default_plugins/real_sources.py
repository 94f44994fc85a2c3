from gandiag import hookimpl

from ..data.domains import sources as domain_sources
from ..data.motion import sources as motion_sources
from ..data.sources import DigitsSource, MixtureSource, PathSource, SinesSource


@hookimpl(trylast=True)
def register_real_sources(register):
    register(DigitsSource())
    register(MixtureSource("ring8"))
    register(MixtureSource("grid25"))
    register(SinesSource())
    for source in motion_sources():  # basicmotions, gunpoint: sktime's wheel (gandiag[motion]), read on use
        register(source)
    for source in domain_sources():  # digits-inverted:a, digits-inverted:b...: the translation pairs' sides
        register(source)
    register(PathSource())
