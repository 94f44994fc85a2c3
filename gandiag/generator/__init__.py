"""Stage 1 of the data path: the generator.

:mod:`.loading` opens a file through the loader plugins and returns a
:class:`~.loading.LoadedGenerator` (a plain ``forward(z, labels)``);
:mod:`.contract` says what goes in and comes out (latent, classes, kind,
layout, range), read from the file (:mod:`.signature` for graphs,
:mod:`.checkpoint` for gandiag's own format) or detected from a probe; and
:mod:`.sampling` draws seeded latents in fixed blocks and turns outputs into
samples of their kind.
"""
