"""``scripts/setup`` records the Debian packages it installed; the record must be true."""

from __future__ import annotations

import subprocess

import pytest

from fixtures.system_packages import SETUP_RECORD, recorded_by_setup


@pytest.mark.skipif(not SETUP_RECORD.is_file(), reason="scripts/setup did not set up this environment")
def test_every_package_setup_recorded_is_installed():
    recorded = recorded_by_setup()
    assert "pocketsphinx-testdata" in recorded
    for package in recorded:
        status = subprocess.run(["dpkg", "-s", package], capture_output=True, text=True)
        assert status.returncode == 0 and "Status: install ok installed" in status.stdout, package
