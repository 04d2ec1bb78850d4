"""The render layer: a spec's graph as a diagram (:mod:`.diagram`) and its math as LaTeX (:mod:`.latex`); no torch."""
