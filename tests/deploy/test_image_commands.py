"""What the image runs, run from a clean install in a fresh virtual environment, as the Dockerfile
does it (Docker itself cannot run on these machines)."""

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
import venv
from pathlib import Path

import pytest

from stack.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def instruction(name: str) -> list[str]:
    """The exec-form JSON array of the final stage's ENTRYPOINT, CMD or HEALTHCHECK CMD."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    final_stage = text.rsplit("\nFROM ", 1)[1]
    pattern = r"^HEALTHCHECK .*?CMD (\[.*\])$" if name == "HEALTHCHECK" else rf"^{name} (\[.*\])$"
    found = re.search(pattern, final_stage, re.M)
    assert found, f"no exec-form {name} in the final stage"
    return json.loads(found.group(1))


@pytest.fixture(name="image_venv", scope="module")
def _image_venv(tmp_path_factory):
    target = tmp_path_factory.mktemp("image") / "venv"
    venv.EnvBuilder(with_pip=True).create(target)
    subprocess.run(
        [
            str(target / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(ROOT),
        ],
        check=True,
        timeout=600,
        cwd=target.parent,
    )
    return target / "bin"


def image_env(bin_dir: Path, **settings: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("GHA_EXPORTER_", "VIRTUAL_ENV", "PYTHON"))
    }
    env["PATH"] = f"{bin_dir}:{env['PATH']}"  # the image's ENV PATH puts its venv first
    env.update(GHA_EXPORTER_LOG__FORMAT="json", **settings)
    return env


def wait_health(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "the process exited"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("no /health")


def test_dockerfile_runs_exec_form_as_non_root():
    assert instruction("ENTRYPOINT") == ["python", "-m"]
    assert instruction("CMD") == ["receiver"]
    final_stage = (ROOT / "Dockerfile").read_text().rsplit("\nFROM ", 1)[1]
    assert re.search(r"^USER 10001$", final_stage, re.M)
    assert "pip install" not in final_stage  # nothing is built in the final stage


@pytest.mark.parametrize("command", ["receiver", "worker"])
def test_image_commands_and_healthcheck_work_from_a_clean_install(image_venv, redis_url, tmp_path, command):
    port = free_port()
    env = image_env(
        image_venv,
        GHA_EXPORTER_REDIS__URL=redis_url,
        GHA_EXPORTER_WEBHOOK__SECRETS="image-secret",
        GHA_EXPORTER_RECEIVER__PORT=str(port),
        GHA_EXPORTER_WORKER__PORT=str(port),
    )
    argv = [*instruction("ENTRYPOINT"), command]
    assert Path(shutil.which(argv[0], path=env["PATH"])).parent == image_venv  # the fresh install runs
    log = (tmp_path / "out.log").open("w")
    process = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_health(port, process)
        healthcheck = subprocess.run(
            instruction("HEALTHCHECK"), env=env, cwd=tmp_path, timeout=30, check=False
        )
        assert healthcheck.returncode == 0
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
        log.close()
    assert code in (0, -signal.SIGTERM)
    lines = [json.loads(line) for line in (tmp_path / "out.log").read_text().splitlines() if line]
    assert any(line["message"].startswith(f"{command} starting") for line in lines)


def test_healthcheck_fails_when_nothing_answers(image_venv, tmp_path):
    env = image_env(
        image_venv, GHA_EXPORTER_RECEIVER__PORT=str(free_port()), GHA_EXPORTER_WORKER__PORT=str(free_port())
    )
    result = subprocess.run(instruction("HEALTHCHECK"), env=env, cwd=tmp_path, timeout=30, check=False)
    assert result.returncode == 1
