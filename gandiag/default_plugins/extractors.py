from gandiag import hookimpl

from ..features.inception import INCEPTION
from ..features.points import POINTS


@hookimpl(trylast=True)
def register_feature_extractors(register):
    from ..features.clip import SPECS as CLIP_SPECS
    from ..features.digits import SPEC as DIGITS
    from ..features.dinov2 import SPECS as DINOV2_SPECS
    from ..features.sequence_nets import MOTION_SPEC, SINES_SPEC
    from ..features.sequence_stats import SPEC as SEQUENCE_STATS

    register(INCEPTION)
    register(DIGITS)
    register(POINTS)
    register(SEQUENCE_STATS)
    register(SINES_SPEC)
    register(MOTION_SPEC)
    for spec in (*DINOV2_SPECS, *CLIP_SPECS):  # timm / open_clip are imported when one is built (gandiag[modern])
        register(spec)
