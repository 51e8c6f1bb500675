"""Runs the README's quick start verbatim against a real server."""

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def quick_start_code() -> str:
    text = README.read_text()
    section = text.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the Quick start section must hold one python block"
    return blocks[0]


def test_readme_quick_start(server, tmp_path):
    script = tmp_path / "quickstart.py"
    script.write_text(quick_start_code())
    env = dict(os.environ, RIVERLOG_TARGET=server.target)
    for run in (1, 2):  # a second run (existing stream and group) works too
        result = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0] == ("published sequences [1, 2]" if run == 1 else "published sequences [3, 4]")
        assert any(line.startswith("subscribed orders:42") for line in lines)
        billing = [line for line in lines if line.startswith("billing")]
        assert billing[-1].endswith("{'method': 'card'}")
        if run == 1:
            assert billing == ["billing 1 {'total': 12.5}", "billing 2 {'method': 'card'}"]
        else:
            assert billing == ["billing 3 {'total': 12.5}", "billing 4 {'method': 'card'}"]
