"""``--set`` overrides shared by the panoptic end-to-end tests: 40 synthetic 64-pixel images and
one-batch BN recalibration, so that a whole run takes seconds on a CPU."""

MICRO_RUN = [
    "data.synthetic.num_images=40",
    "data.synthetic.size=64",
    "data.short_sizes=[64]",
    "data.test_size=64",
    "data.max_size=64",
    "eval.bn_batches=1",
    "eval.bn_batch_size=2",
]
