"""The line a run prints works: the installed JupyterLab serves the notebook, and its kernel executes it.

Starts ``jupyter lab`` headless on a loopback port (the ``[notebook]`` extra), opens
``notebooks/explore.ipynb`` through the server's REST API, runs every code cell on the kernel the server
started (Jupyter's messaging protocol over the server's websocket), checks the outputs that come back,
and stops the server. Skipped when JupyterLab is not installed.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

pytest.importorskip("jupyterlab")
websocket = pytest.importorskip("tornado.websocket")

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # a server, a kernel and the notebook: ~30 s on 2 cores


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _api(base: str, token: str, path: str, body: dict | None = None, method: str | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{base}{path}", data=data, method=method or ("POST" if body else "GET"))
    req.add_header("Authorization", f"token {token}")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        text = r.read()
    return json.loads(text) if text else {}


async def _execute(url: str, token: str, sources: list[str], timeout_s: float = 240) -> list[dict]:
    """Run each source on the kernel; return, per cell, its outputs and whether it raised."""
    req = websocket.httpclient.HTTPRequest(url, headers={"Authorization": f"token {token}"})
    conn = await websocket.websocket_connect(req)
    session = uuid.uuid4().hex
    results = []
    try:
        for src in sources:
            msg_id = uuid.uuid4().hex
            header = {"msg_id": msg_id, "msg_type": "execute_request", "session": session, "username": "test"}
            header |= {"version": "5.3", "date": ""}
            content = {"code": src, "silent": False, "store_history": True, "allow_stdin": False}
            content |= {"user_expressions": {}, "stop_on_error": True}
            msg = {"header": header, "parent_header": {}, "metadata": {}, "content": content, "channel": "shell"}
            await conn.write_message(json.dumps(msg))
            outputs: list[dict] = []
            error = None
            deadline = time.monotonic() + timeout_s
            while True:
                raw = await asyncio.wait_for(conn.read_message(), timeout=max(1.0, deadline - time.monotonic()))
                assert raw is not None, "the kernel's websocket closed"
                m = json.loads(raw)
                if m.get("parent_header", {}).get("msg_id") != msg_id or m.get("channel") != "iopub":
                    continue
                kind = m["header"]["msg_type"]
                if kind in ("stream", "display_data", "execute_result"):
                    outputs.append(m["content"])
                elif kind == "error":
                    error = f"{m['content']['ename']}: {m['content']['evalue']}"
                elif kind == "status" and m["content"]["execution_state"] == "idle":
                    break
            results.append({"outputs": outputs, "error": error})
            if error:
                break
    finally:
        conn.close()
    return results


def test_jupyterlab_serves_the_notebook_and_its_kernel_runs_it(tmp_path):
    exe = shutil.which("jupyter", path=str(Path(sys.executable).parent))
    assert exe is not None, "the [notebook] extra installs the jupyter command beside this Python"
    import importlib.util

    spec = importlib.util.spec_from_file_location("synth", ROOT / "tests/bench/report/conftest.py")
    assert spec is not None and spec.loader is not None
    synth = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(synth)
    results = tmp_path / "results"
    results.mkdir()
    synth.synthetic_results().to_csv(results / "results.csv", index=False)
    from bench.cli import notebook_line

    # the very command a run prints (bench.cli.notebook_line), plus a port and a token for this test
    line = notebook_line(results).split("open it in JupyterLab: ", 1)[1].removesuffix(")")
    assign, *cmd = shlex.split(line)
    assert assign == f"HOURGLASS_RESULTS={results}" and cmd[0] == exe and cmd[1] == "lab"
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "HOURGLASS_RESULTS": str(results), "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    env |= {"JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}
    cmd += ["--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}"]
    cmd += [f"--ServerApp.root_dir={ROOT}", "--ServerApp.port_retries=0"]
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                status = _api(base, token, "/api/status")
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
                assert time.monotonic() < deadline, "JupyterLab did not answer within 90 s"
                time.sleep(0.5)
        assert "started" in status
        lab = urllib.request.urlopen(urllib.request.Request(f"{base}/lab?token={token}"), timeout=30)
        assert lab.status == 200 and b"JupyterLab" in lab.read()  # the Lab front end itself is served
        nb = _api(base, token, "/api/contents/notebooks/explore.ipynb")
        assert nb["type"] == "notebook"
        sources = [
            "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in nb["content"]["cells"]
            if c["cell_type"] == "code"
        ]
        sess = _api(
            base,
            token,
            "/api/sessions",
            {"path": "notebooks/explore.ipynb", "type": "notebook", "name": "", "kernel": {"name": "python3"}},
        )
        kernel = sess["kernel"]["id"]
        url = f"ws://127.0.0.1:{port}/api/kernels/{kernel}/channels"
        cells = asyncio.run(_execute(url, token, sources))
        errors = [c["error"] for c in cells if c["error"]]
        assert not errors, errors
        assert len(cells) == len(sources)
        text = "\n".join(
            o.get("text", "") or str(o.get("data", {}).get("text/plain", "")) for c in cells for o in c["outputs"]
        )
        images = sum("image/png" in o.get("data", {}) for c in cells for o in c["outputs"])
        assert "hypervolume of the MPJPE-gflops fronts" in text and "cluster+attention" in text
        assert images == 9  # the same figures the headless nbclient run shows
        _api(base, token, f"/api/sessions/{sess['id']}", method="DELETE")
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
    assert server.returncode is not None
