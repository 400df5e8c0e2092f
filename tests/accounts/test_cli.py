"""`partnermatch users create-staff`, run as a fresh installation would run it."""

import os
import subprocess
import sys
from pathlib import Path


def partnermatch(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PARTNERMATCH_VAR_DIR": str(tmp_path), "PARTNERMATCH_DATABASE_URL": ""}
    return subprocess.run(
        [sys.executable, "-m", "partnermatch", *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_create_staff_prints_a_token_once_or_takes_a_password(tmp_path: Path) -> None:
    assert partnermatch(tmp_path, "db", "upgrade", "--no-prompt").returncode == 0
    created = partnermatch(tmp_path, "users", "create-staff", "Ops@Example.org", "--token")
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip().startswith("pm_")
    again = partnermatch(tmp_path, "users", "create-staff", "ops@example.org", "--token")
    assert again.returncode == 1
    assert "exists" in again.stderr

    weak = partnermatch(tmp_path, "users", "create-staff", "b@example.org", stdin="password\npassword\n")
    assert weak.returncode == 1
    assert "at least 12" in weak.stderr
    phrase = "a long enough secret phrase\n"
    admin = partnermatch(tmp_path, "users", "create-staff", "b@example.org", "--admin", stdin=phrase * 2)
    assert admin.returncode == 0, admin.stderr
    assert "created admin account" in admin.stderr
