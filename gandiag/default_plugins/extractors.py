from ..hookspecs import hookimpl
from ..inception import INCEPTION, POINTS


@hookimpl(trylast=True)
def register_feature_extractors(register):
    from ..digits_classifier import SPEC as DIGITS

    register(INCEPTION)
    register(DIGITS)
    register(POINTS)
