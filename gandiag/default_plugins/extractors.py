from gandiag import hookimpl

from ..features.inception import INCEPTION
from ..features.points import POINTS


@hookimpl(trylast=True)
def register_feature_extractors(register):
    from ..features.digits import SPEC as DIGITS

    register(INCEPTION)
    register(DIGITS)
    register(POINTS)
