"""The CLI package: flags derived from dataclasses, lazy imports, pluggable commands."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Literal

import pytest

from vaelab.cli import Parser, build_parser
from vaelab.cli.fields import add_dataclass_flags, field_docs, given_values
from vaelab.cli.train import config_from_args, rank_argv
from vaelab.config import TrainConfig
from vaelab.errors import UsageError


@dataclass
class _Demo:
    rate: float = 0.5
    """How fast. Second sentence is not shown."""
    mode: Literal["a", "b"] = "a"
    """Which mode."""
    sizes: list[int] = field(default_factory=lambda: [1, 2])
    flag: bool = True
    """Turn it on."""
    limit: int | None = None


def test_flags_follow_fields_types_and_docstrings():
    p = Parser(prog="demo")
    names = add_dataclass_flags(p, _Demo)
    assert names == ["rate", "mode", "sizes", "flag", "limit"]
    text = p.format_help()
    assert "How fast (default 0.5)" in text and "Second sentence" not in text
    assert "--flag, --no-flag" in text and "{a,b}" in text
    args = p.parse_args(["--rate", "2", "--sizes", "3,4", "--no-flag", "--limit", "7"])
    assert given_values(args, names) == {"rate": 2.0, "sizes": [3, 4], "flag": False, "limit": 7}
    assert given_values(p.parse_args([]), names) == {}  # nothing given: defaults stay unset


def test_every_train_config_field_has_a_documented_flag():
    docs = field_docs(TrainConfig)
    sub = build_parser()._subparsers._group_actions[0].choices["train"]  # type: ignore[union-attr]
    flags = {a.dest: a for a in sub._actions}
    for f in dataclasses.fields(TrainConfig):
        assert f.name in flags, f"TrainConfig.{f.name} has no train flag"
        assert f.name in docs, f"TrainConfig.{f.name} has no docstring for its --help"


def test_flags_override_toml_which_overrides_defaults(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('[train]\nmodel = "vae"\nbeta = 0.5\nnorm = false\n')
    args = build_parser().parse_args(["train", "--config", str(toml), "--beta", "2", "--out", "x"])
    cfg = config_from_args(args)
    assert (cfg.model, cfg.beta, cfg.norm, cfg.epochs) == ("vae", 2.0, False, 10)


def test_import_and_parser_build_load_no_heavy_module():
    code = (
        "import sys, vaelab.cli as c; c.build_parser(); "
        "print(sorted(m for m in ('torch', 'numpy', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_command_is_one_row_and_one_module(monkeypatch, tmp_path, capsys):
    (tmp_path / "vaelab_demo_cmd.py").write_text(
        "def register(sub):\n"
        "    p = sub.add_parser('hello', help='demo')\n"
        "    p.set_defaults(func=lambda args: print('hi') or 0)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import vaelab.cli as cli

    monkeypatch.setattr(cli, "COMMANDS", (*cli.COMMANDS, "vaelab_demo_cmd"))
    assert cli.main(["hello"]) == 0 and capsys.readouterr().out == "hi\n"


def test_usage_errors_are_one_line_and_help_exits_zero(capsys):
    from vaelab.cli import main

    assert main(["train", "--help"]) == 0
    assert "--latent-dim" in capsys.readouterr().out
    assert main(["train", "--epochs", "x", "--out", "o"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "vaelab: error: argument --epochs: expected an integer, got 'x' (see `vaelab train --help`)"
    ]


def test_version_and_help_print_what_they_promise(capsys):
    """--version prints the package's version; -h lists every command with its help line."""
    from vaelab import __version__
    from vaelab.cli import main

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"vaelab {__version__}\n"
    assert main(["-h"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: vaelab ")
    for command in [
        "data",
        "train",
        "evaluate",
        "sample",
        "interpolate",
        "study",
        "explore",
        "sweep",
    ]:
        assert re.search(rf"^\s+{command}\s+\S", out, re.M), (command, out)
    assert "--debug" in out and "--version" in out


def test_parser_class_refuses_abbreviations():
    p = Parser(prog="x")
    p.add_argument("--epochs", type=int)
    with pytest.raises(UsageError, match="unrecognized arguments: --epoch 3"):
        p.parse_args(["--epoch", "3"])


def test_nproc_ranks_run_the_same_train_command_without_nproc():
    """`vaelab train --nproc N` hands each rank its own flags back: the same config, --out and
    --resume (flag spellings, bools, lists and exact floats survive the trip), no --nproc."""
    parser = build_parser()
    argv = ["train", "--model", "vae", "--beta", "0.30000000000000004", "--channels", "8,16,32,32"]
    argv += ["--no-norm", "--lr", "1e-4", "--limit-train", "96", "--out", "runs/x", "--resume"]
    args = parser.parse_args([*argv, "--nproc", "2"])
    ranks = parser.parse_args(rank_argv(args))
    assert ranks.nproc is None and ranks.out == "runs/x" and ranks.resume
    assert (
        config_from_args(ranks)
        == config_from_args(args)
        == config_from_args(parser.parse_args(argv))
    )
    assert config_from_args(ranks).beta == 0.30000000000000004 and not config_from_args(ranks).norm


def test_public_api_is_lazy_and_every_name_resolves():
    """`import vaelab` imports no torch (the CLI's start-up and `vaelab --help` stay fast), and
    every name in `vaelab.__all__` resolves to the object of its defining module."""
    code = (
        "import sys, vaelab; assert 'torch' not in sys.modules, 'torch imported'; "
        "[getattr(vaelab, n) for n in vaelab.__all__]; print(sorted(vaelab.__all__))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    import vaelab
    from vaelab.distributions import DiagonalGaussian
    from vaelab.study import make_config

    assert vaelab.TrainConfig is TrainConfig and vaelab.DiagonalGaussian is DiagonalGaussian
    assert vaelab.make_config is make_config
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        vaelab.nope  # noqa: B018


def test_public_functions_stay_callable_after_their_packages_are_imported():
    """`vaelab.train/evaluate/study` are also package names; importing a package binds it over
    the function (in 0.2 a second `vaelab.study(cfg)` failed), so the packages forward calls."""
    import inspect

    import vaelab
    import vaelab.evaluate.keys
    import vaelab.study.presets
    import vaelab.train.loop

    for name in ("train", "evaluate", "study"):
        entry = getattr(vaelab, name)
        assert callable(entry), name
        assert inspect.signature(entry) == inspect.signature(vaelab._FUNCTIONS[name]), name
    with pytest.raises(TypeError):
        vaelab.study()  # forwarded: the function's own argument check
