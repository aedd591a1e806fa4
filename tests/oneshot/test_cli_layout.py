"""The command layout: plug-in commands under their own group, old spellings named, --task resolution."""

from click.testing import CliRunner

from oneshot.cli import MOVED_COMMANDS, cli


def test_help_lists_the_plugin_group_and_not_the_old_flat_commands():
    out = CliRunner().invoke(cli, ["--help"]).output
    commands = out.split("Commands:")[1]
    assert "panoptic" in commands
    for old in ("evaluate ", "data ", "benchmark "):
        assert f"  {old}" not in commands
    sub = CliRunner().invoke(cli, ["panoptic", "--help"]).output
    assert "evaluate" in sub and "data" in sub


def test_old_spellings_fail_with_one_line_naming_the_new_command():
    for old, new in MOVED_COMMANDS.items():
        result = CliRunner().invoke(cli, [old, "--gt-json", "x"])
        assert result.exit_code != 0
        message = [line for line in result.output.splitlines() if line.strip()]
        assert len(message) == 1 and new in message[0], result.output


def test_task_omitted_resolves_from_the_run_directory(tmp_path):
    out = tmp_path / "run"
    first = CliRunner().invoke(cli, ["train-supernet", "--task", "toy", "--preset", "tiny", "--out", str(out),
                                     "--quiet", "--set", "train.iterations=1"])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(cli, ["train-supernet", "--out", str(out), "--quiet"], env={"ONESHOT_TASK": ""})
    assert again.exit_code == 0, again.output
