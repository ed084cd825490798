"""users.yaml: password hashes, validation with file and line, the CLI helpers; the wait
script's keys share one cluster slot."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from redis.crc import key_slot

from config.errors import ConfigError
from config.keys import Keys
from config.users import hash_password, load_users, load_users_text, verify_password
from hotline.cli import main

CHEAP = {"n": 2**10, "r": 8, "p": 1}


def test_hash_and_verify() -> None:
    stored = hash_password("a good long password", **CHEAP)
    assert stored.startswith("scrypt$1024$8$1$")
    assert verify_password("a good long password", stored)
    assert not verify_password("a good long passwore", stored)
    assert hash_password("same", **CHEAP) != hash_password("same", **CHEAP)  # salted
    for broken in ("", "plain", "scrypt$3$8$1$AA==$AA==", "md5$x$y$z$a$b", stored[:-8]):
        assert not verify_password("x", broken)


def test_the_shipped_users_file_is_valid() -> None:
    config = load_users(Path(__file__).resolve().parents[2] / "config" / "users.yaml")
    assert {u.role for u in config.users.values()} == {"supervisor", "viewer"}
    assert config.amber_s == 20 and config.red_s == 30
    assert config.plan.satisfaction_increase == pytest.approx(0.10)
    assert config.plan.complaints_decrease == pytest.approx(0.15)


def test_missing_file_means_no_users(tmp_path: Path) -> None:
    assert load_users(tmp_path / "users.yaml").users == {}


@pytest.mark.parametrize(
    ("text", "where", "line"),
    [
        ("users:\n  ann: {role: admin, password_hash: HASH}\n", "users.ann", 2),
        ("users:\n  ann:\n    role: viewer\n    password_hash: plain\n", "users.ann", 4),
        ("users:\n  ann: {role: viewer}\n", "users.ann", 2),
        ("users:\n  Ann: {role: viewer, password_hash: HASH}\n", "users.Ann", 2),
        ("dashboard:\n  amber_s: 40\n  red_s: 30\n", "dashboard", 3),
        ("sessions: {ttl_s: 0}\n", "sessions", 1),
        ("plan:\n  complaints_decrease: 2\n", "plan", 2),
        ("colour: red\n", "", 1),
    ],
)
def test_bad_files_name_field_and_line(text: str, where: str, line: int) -> None:
    text = text.replace("HASH", hash_password("x", **CHEAP))
    with pytest.raises(ConfigError) as info:
        load_users_text(text, "users.yaml")
    (issue,) = info.value.issues
    assert issue.where == where and issue.line == line and issue.file == "users.yaml"


def test_cli_hash_password_and_check(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long enough password\n"))
    assert main(["users", "hash-password", "--stdin"]) == 0
    stored = capsys.readouterr().out.strip()
    assert verify_password("a long enough password", stored)
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert main(["users", "hash-password", "--stdin"]) == 1
    assert main(["users", "check", "--file", "config/users.yaml"]) == 0
    assert "valid" in capsys.readouterr().out


def test_cli_report_needs_a_month() -> None:
    with pytest.raises(SystemExit):
        main(["report", "--month", "2026-13"])


def test_wait_script_keys_share_one_cluster_slot() -> None:
    k, g = Keys(prefix="hl:"), "main"
    script_keys = [
        k.route_done(g),
        k.route_done_index(g),
        k.sup_wait_checkpoint(g),
        k.sup_wait_hist(g, "2026-11-28"),
        k.sup_wait_hist(g, "2026-11-27"),
    ]
    assert len({key_slot(key.encode()) for key in script_keys}) == 1


def test_check_config_validates_users_yaml(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(Path(__file__).resolve().parents[2] / "config", tmp_path / "c")
    assert main(["check-config", "--dir", str(tmp_path / "c")]) == 0
    (tmp_path / "c" / "users.yaml").write_text("users:\n  ann: {role: boss}\n")
    assert main(["check-config", "--dir", str(tmp_path / "c")]) == 2


def test_cli_report_writes_the_files(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    redis_url: str,
    key_prefix: str,
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("HOTLINE_KEY_PREFIX", key_prefix)  # empty: nothing is written
    assert main(["report", "--month", "2026-10", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "report written to" in out and "days without call statistics: 31" in out
    assert (tmp_path / "report-2026-10" / "index.html").exists()
    assert (tmp_path / "report-2026-10" / "kpis.csv").exists()
