"""Stage 3 of the data path: features, extracted once per extractor.

:mod:`.extractor` says what an extractor is (the built-ins:
:mod:`.inception`, :mod:`.digits`, :mod:`.points`); a pass fills a
:class:`~.featureset.FeatureSet` whose streamed roles keep float64
statistics (:mod:`.stats`); real-data features are cached and validated
(:mod:`.cache`).
"""
