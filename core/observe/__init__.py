"""Stage: per-person observations: BlazePose landmarks, 3-D world landmarks and masks
(``landmarks``), and DensePose IUV when a checkpoint is present (``densepose``)."""
