"""Stage 2 of the data path: samples, generated or real.

:mod:`.samples` holds sets of samples that stream in batches (in memory,
``.npz`` files, image folders), :mod:`.sources` the real-data sources a
``--real`` names (bundled ``digits``, the 2D mixtures of :mod:`.mixtures`,
a path), each a plugin.
"""
