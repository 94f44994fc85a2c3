"""Built-in sample kinds: ``images`` (uint8 NCHW) and ``points`` (float32 (N, D))."""

from gandiag import hookimpl

from ..data.images import Images
from ..data.kinds import Points


@hookimpl(trylast=True)
def register_sample_kinds(register):
    register(Images())
    register(Points())
