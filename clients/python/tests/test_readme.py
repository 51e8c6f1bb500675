"""Runs the README's quick start and asyncio example verbatim against a real
server."""

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def section_code(title: str) -> str:
    text = README.read_text()
    section = text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, f"the {title} section must hold one python block"
    return blocks[0]


def run_section(title: str, server, tmp_path):
    """Runs a section's block twice (the second run finds the stream and
    group of the first); yields each run's output lines."""
    script = tmp_path / "example.py"
    script.write_text(section_code(title))
    env = dict(os.environ, RIVERLOG_TARGET=server.target)
    for run in (1, 2):
        result = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        yield run, result.stdout.splitlines()


def test_readme_quick_start(server, tmp_path):
    for run, lines in run_section("Quick start", server, tmp_path):
        assert lines[0] == ("published sequences [1, 2]" if run == 1 else "published sequences [3, 4]")
        assert any(line.startswith("subscribed orders:42") for line in lines)
        billing = [line for line in lines if line.startswith("billing")]
        assert billing[-1].endswith("{'method': 'card'}")
        if run == 1:
            assert billing == ["billing 1 {'total': 12.5}", "billing 2 {'method': 'card'}"]
        else:
            assert billing == ["billing 3 {'total': 12.5}", "billing 4 {'method': 'card'}"]


def test_readme_asyncio(server, tmp_path):
    for run, lines in run_section("asyncio", server, tmp_path):
        first = 1 if run == 1 else 3
        assert lines[0] == f"published {[first, first + 1]}"
        assert "subscribed invoices:7 com.example.invoice.paid" in lines
        assert "nothing new" in lines
        mailer = [line for line in lines if line.startswith("mailer")]
        assert mailer[-1] == f"mailer {first + 1} {{'paid': True}}"
        if run == 1:
            assert mailer == ["mailer 1 {'total': 99}", "mailer 2 {'paid': True}"]
        assert f"produced up to {100 * run}" in lines
        assert lines[-1] == "refused INVALID_STREAM_NAME"
