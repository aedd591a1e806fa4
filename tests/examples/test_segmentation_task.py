"""examples/segmentation_task.py: the data, the supernet's space and one evaluation."""

import torch

from examples.segmentation_task import CLASSES, ShapesSegmentationTask, ShapesUNet, make_shapes
from oneshot import SearchSpace, activate
from oneshot.tasks import get_task


def test_shapes_have_every_class_and_the_unet_keeps_the_size():
    images, masks = make_shapes(4, 16, seed=0).tensors
    assert images.shape == (4, 3, 16, 16) and masks.shape == (4, 16, 16)
    assert set(masks.unique().tolist()) == {0, 1, 2}
    model = ShapesUNet(width=4)
    space = SearchSpace.from_module(model)
    assert list(space.components) == ["encoder", "decoder", "fusion", "head"]
    assert space.components["decoder"] == (2, 4) and space.components["fusion"] == (3, 5)  # interleaved
    for seed in range(4):  # every candidate, including both fusions' inputs, fits
        with activate(model, space.sample(seed)):
            assert model(images).shape == (4, len(CLASSES), 16, 16)


def test_task_is_addressed_by_its_module_path_and_evaluates(tmp_path):
    cls = get_task("examples.segmentation_task:ShapesSegmentationTask")
    assert cls is ShapesSegmentationTask
    config = cls.config_class.model_validate(cls.presets()["tiny"])
    task = cls(config, run_dir=tmp_path, progress=False)
    model = task.build_supernet()
    space = SearchSpace.from_module(model)
    (metrics,) = task.evaluate(model, [space.sample(0)])
    assert metrics["fitness"] == metrics["miou"] and 0 <= metrics["miou"] <= 100
    assert set(metrics) >= {"pixel_acc", "iou/background", "iou/square", "iou/disk"}
    with activate(model, space.sample(1)):
        loss = task.loss(model.train(), next(task.train_batches(seed=0)))
    assert loss.ndim == 0 and torch.isfinite(loss)
