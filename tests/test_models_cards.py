"""docs/models.md is generated from the manifest and must stay in sync with it."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO_ROOT


def test_model_cards_are_up_to_date():
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "generate_model_cards.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr


def test_model_cards_name_every_model_and_weights():
    text = (REPO_ROOT / "docs" / "models.md").read_text()
    import zoo

    for name in zoo.list_models():
        assert f"## {name}\n" in text
        for key in zoo.list_weights(name):
            assert f"`{key}`" in text
