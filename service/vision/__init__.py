"""Everything that looks at pixels: the MTCNN detector, alignment, the embedders (one file per model, keyed
by model id in ``embedders.registry``) and the offline preparation of their weights (``weights``)."""
