"""``intrain demo`` writes only into a folder it made (or a new one)."""

from __future__ import annotations

from intrain.cli import main


def test_demo_refuses_a_folder_it_did_not_make(tmp_path, capsys):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "thesis.tex").write_text("mine")
    assert main(["demo", "--out", str(out), "--epochs", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "thesis.tex" in err and "--overwrite" in err
    assert sorted(p.name for p in out.iterdir()) == ["thesis.tex"]


def test_demo_refuses_a_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text("method: pwt\n")
    assert main(["demo", "--out", str(out), "--epochs", "1", "--quiet"]) == 2
    assert "holds a run" in capsys.readouterr().err
