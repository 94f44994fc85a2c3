"""Built-in architectures: the reference trainer's networks (:mod:`gandiag.training.nets`,
:mod:`gandiag.training.sequence_nets`, :mod:`gandiag.training.translator_nets`)."""

from gandiag import hookimpl

from ..training.nets import ARCHITECTURES
from ..training.sequence_nets import SEQUENCE_ARCHITECTURES
from ..training.translator_nets import TRANSLATOR_ARCHITECTURES


@hookimpl(trylast=True)
def register_architectures(register):
    for name, builder in {**ARCHITECTURES, **SEQUENCE_ARCHITECTURES, **TRANSLATOR_ARCHITECTURES}.items():
        register(name, builder)
