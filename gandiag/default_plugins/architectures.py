"""Built-in architectures: the reference trainer's networks (:mod:`gandiag.training.nets`)."""

from gandiag import hookimpl

from ..training.nets import ARCHITECTURES


@hookimpl(trylast=True)
def register_architectures(register):
    for name, builder in ARCHITECTURES.items():
        register(name, builder)
