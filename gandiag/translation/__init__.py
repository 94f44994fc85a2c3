"""Image-to-image (and point-to-point) translation: translators fed their input domain, not a latent.

Data path (docs/translation.md): the inputs (:mod:`.inputs`) go through the
translator in order during the pipeline's one sampling pass; its outputs are
features like any generated samples (FID, KID, PRDC against the target
domain); the same pass records, per direction, what went in and came back
(:mod:`.run`), from which the translation measures (cycle, identity, paired
PSNR/SSIM, label preservation: :mod:`.measures`) and the translation
diagnostics are computed.
"""
