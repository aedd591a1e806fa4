import pytest

from oneshot.tasks import Task, UnknownTaskError, available_tasks, get_task, register_task
from oneshot.testing import ToyTask


def test_entry_point_tasks_are_listed():
    names = available_tasks()
    assert "toy" in names and "panoptic" in names
    assert get_task("toy") is ToyTask


def test_unknown_task_lists_available():
    with pytest.raises(UnknownTaskError) as info:
        get_task("segmentation-of-everything")
    assert "unknown task 'segmentation-of-everything'; available tasks:" in str(info.value)
    assert "toy" in str(info.value)


def test_duplicate_registration_is_loud():
    class Other(ToyTask):
        pass

    with pytest.raises(ValueError, match="task 'toy' is already registered"):
        register_task(Other)


def test_core_does_not_import_the_panoptic_plugin():
    import subprocess
    import sys

    code = (
        "import sys, oneshot, oneshot.cli, oneshot.pipeline, oneshot.train, oneshot.tasks, oneshot.search;"
        "assert not any(m.startswith('oneshot_panoptic') for m in sys.modules), 'core imported the plug-in'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_task_is_abstract():
    with pytest.raises(TypeError):
        Task(None, run_dir=".")  # type: ignore[abstract,arg-type]


def test_task_by_module_path_without_packaging(tmp_path, monkeypatch):
    import pytest

    from oneshot.registry import RegistryError
    from oneshot.tasks import get_task
    from oneshot.testing import ToyTask

    assert get_task("oneshot.testing:ToyTask") is ToyTask
    # a module next to the working directory is found, as with `python -m`
    (tmp_path / "my_tasks_for_test.py").write_text(
        "from oneshot.testing import ToyTask\n\nclass MyTask(ToyTask):\n    name = 'my-task'\n\nnot_a_task = 3\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", [p for p in __import__("sys").path if p not in ("", str(tmp_path))])
    assert get_task("my_tasks_for_test:MyTask").name == "my-task"
    with pytest.raises(RegistryError, match="has no attribute 'Missing'"):
        get_task("my_tasks_for_test:Missing")
    with pytest.raises(RegistryError, match="not a Task subclass"):
        get_task("my_tasks_for_test:not_a_task")
    with pytest.raises(RegistryError, match="cannot import module 'no_such_module_xyz'"):
        get_task("no_such_module_xyz:Task")
