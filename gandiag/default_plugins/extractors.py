from gandiag import hookimpl

from ..features.inception import INCEPTION
from ..features.points import POINTS


@hookimpl(trylast=True)
def register_feature_extractors(register):
    from ..features.digits import SPEC as DIGITS
    from ..features.sequence_nets import MOTION_SPEC, SINES_SPEC
    from ..features.sequence_stats import SPEC as SEQUENCE_STATS

    register(INCEPTION)
    register(DIGITS)
    register(POINTS)
    register(SEQUENCE_STATS)
    register(SINES_SPEC)
    register(MOTION_SPEC)
