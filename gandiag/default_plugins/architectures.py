"""Built-in architectures: the reference trainer's networks (:mod:`gandiag.nets`)."""

from ..hookspecs import hookimpl
from ..nets import ARCHITECTURES


@hookimpl(trylast=True)
def register_architectures(register):
    for name, builder in ARCHITECTURES.items():
        register(name, builder)
