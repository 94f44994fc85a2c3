"""Built-in sample kinds: ``images`` (uint8 NCHW), ``points`` (float32 (N, D)) and ``sequences`` (float32 (N, T, C))."""

from gandiag import hookimpl

from ..data.images import Images
from ..data.kinds import Points
from ..data.sequences import Sequences


@hookimpl(trylast=True)
def register_sample_kinds(register):
    register(Images())
    register(Points())
    register(Sequences())
