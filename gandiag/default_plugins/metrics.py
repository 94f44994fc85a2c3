from gandiag import hookimpl

from ..metrics.cmmd import CMMD
from ..metrics.fid import FID
from ..metrics.inception_score import InceptionScore
from ..metrics.kid import KID
from ..metrics.prdc import builtin_metrics as prdc_metrics
from ..metrics.sequences import builtin_metrics as sequence_metrics


@hookimpl(trylast=True)
def register_metrics(register):
    for metric in (InceptionScore(), FID(), KID(), *prdc_metrics(), *sequence_metrics(), CMMD()):
        register(metric)
