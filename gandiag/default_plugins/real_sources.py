from gandiag import hookimpl

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
    register(PathSource())
