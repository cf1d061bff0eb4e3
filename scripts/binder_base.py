"""Helpers of scripts/check_binder_env.sh (Binder's environment as repo2docker builds it).

    binder_base.py plan DOCKERFILE VERSION  # repo2docker's plan: Python VERSION, requirements, then postBuild
    binder_base.py requirements LOCK        # pip requirements for the Python packages of a repo2docker conda lock
    binder_base.py pip-check OUTPUT         # fail unless `pip check` reports only the conflicts the README explains
    binder_base.py serve                    # JupyterLab serves the course; jupyterhub-singleuser starts without a hub
"""
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# conda-forge names whose package on the index is called otherwise.
PYPI_NAME = {"brotli-python": "brotli", "python-fastjsonschema": "fastjsonschema", "jupyterhub-base": "jupyterhub",
             "nbconvert-core": "nbconvert"}
# conda-forge metapackages (they only pull in others, all listed in the lock) and conda's own Python.
NOT_ON_THE_INDEX = {"python", "python_abi", "cached-property", "typing-extensions", "bleach-with-css",
                    "jsonschema-with-format-nongpl", "jupyterhub-singleuser"}
# What `pip check` may still report, and why (the README's "Binder" paragraph says the same).
EXPLAINED = {
    "jax": "TFF 0.87.0 pins jax/jaxlib 0.4.14, which have no wheel for Linux x86_64; the course runs on 0.4.13",
    "jaxlib": "TFF 0.87.0 pins jax/jaxlib 0.4.14, which have no wheel for Linux x86_64; the course runs on 0.4.13",
    "typing-extensions": "TFF 0.87.0 pins 4.5.*; JupyterHub's pydantic needs >= 4.14.1; "
                         "TFF runs with 4.15.0 (the course's tests)",
}


def plan(dockerfile, version):
    text = Path(dockerfile).read_text()
    log = Path(dockerfile).with_suffix(".log").read_text()
    # repo2docker names the files it copies with '.' as '-2e' and '-' as '-2d'.
    lock = "".join({".": "-2e", "-": "-2d"}.get(c, c) for c in f"environment.py-{version}-linux-64.lock")
    assert f"python={version}" in log and lock in text, f"repo2docker does not plan Python {version}: see {dockerfile}"
    install = text.find('pip install --no-cache-dir -r "binder/requirements.txt"')
    post_build = text.find("./binder/postBuild")
    assert 0 <= install < post_build, "repo2docker must install binder/requirements.txt, then run binder/postBuild"
    print(f"repo2docker --no-build: Python {version} from its conda lock, then binder/requirements.txt, "
          f"then binder/postBuild")


def requirements(lock):
    wanted, skipped = [], []
    for line in Path(lock).read_text().splitlines():
        if not line.startswith("https://"):
            continue
        filename = line.rsplit("/", 1)[1].split("#")[0]
        filename = re.sub(r"\.(conda|tar\.bz2)$", "", filename)
        name, version, build = filename.rsplit("-", 2)
        if not build.startswith("py") or name in NOT_ON_THE_INDEX:
            skipped.append(name)  # C libraries, conda's Python, metapackages
            continue
        wanted.append(f"{PYPI_NAME.get(name, name)}=={version}")
    print(f"repo2docker's lock: {len(wanted)} Python packages taken from the index, {len(skipped)} others "
          f"(C libraries, conda's Python, metapackages) left out", file=sys.stderr)
    print("\n".join(wanted))


def pip_check(output):
    lines = [line for line in Path(output).read_text().splitlines() if line.strip() and not line.startswith("WARNING")]
    unexplained = []
    for line in lines:
        match = re.match(r"(\S+) [\d.]+ (?:has requirement|requires) ([A-Za-z0-9_.-]+)", line)
        if not (match and match.group(1) == "tensorflow-federated" and match.group(2).lower() in EXPLAINED):
            unexplained.append(line)
    for line in lines:
        print("pip check:", line)
    if unexplained:
        sys.exit("pip check reports conflicts the README does not explain:\n  " + "\n  ".join(unexplained))
    print(f"pip check: {len(lines)} conflicts, all TFF 0.87.0's own pins, explained in the README")


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url, process, log, seconds=90):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{url}: the server exited ({process.returncode}):\n{Path(log).read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, b""
        except OSError:
            time.sleep(0.5)
    sys.exit(f"{url}: no answer in {seconds} s:\n{Path(log).read_text()[-3000:]}")


def _stop(process):
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def serve():
    bin_dir = Path(sys.executable).parent
    port, token = _free_port(), "binder-check"
    log = ROOT / "build" / "binder-lab.log"
    lab = subprocess.Popen([str(bin_dir / "jupyter"), "lab", "--no-browser", f"--ServerApp.root_dir={ROOT}",
                            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", f"--IdentityProvider.token={token}"]
                           + (["--allow-root"] if os.geteuid() == 0 else []), cwd=ROOT, stdout=open(log, "w"),
                           stderr=subprocess.STDOUT)
    try:
        status, _ = _wait_http(f"http://127.0.0.1:{port}/api/status?token={token}", lab, log)
        assert status == 200, status
        status, body = _wait_http(f"http://127.0.0.1:{port}/lab/tree/notebooks/00_environment_and_vocabulary.ipynb?token={token}",
                                  lab, log)
        assert status == 200 and b"JupyterLab" in body, status
        status, body = _wait_http(f"http://127.0.0.1:{port}/api/contents/exercises?token={token}", lab, log)
        assert status == 200 and b"00_environment_and_vocabulary.ipynb" in body, status
    finally:
        _stop(lab)
    print("JupyterLab serves the course: notebook 00 and the exercise copies")

    # JupyterHub's single-user server, as a hub would start it. It first asks the hub's API for its
    # version (and gives up after five tries without a hub), so a stand-in answers that one question;
    # the server must then serve, and send a request without a login to the hub.
    import http.server
    import threading

    import jupyterhub

    class StandInHub(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("X-JupyterHub-Version", jupyterhub.__version__)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    port, hub_port = _free_port(), _free_port()
    hub = http.server.ThreadingHTTPServer(("127.0.0.1", hub_port), StandInHub)
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    prefix = "/user/learner/"
    env = {**os.environ, "JUPYTERHUB_API_TOKEN": "binder-check", "JUPYTERHUB_API_URL": f"http://127.0.0.1:{hub_port}/hub/api",
           "JUPYTERHUB_BASE_URL": "/", "JUPYTERHUB_SERVICE_PREFIX": prefix, "JUPYTERHUB_USER": "learner",
           "JUPYTERHUB_CLIENT_ID": "jupyterhub-user-learner",
           "JUPYTERHUB_OAUTH_CALLBACK_URL": f"{prefix}oauth_callback",
           "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}{prefix}", "JUPYTERHUB_HOST": ""}
    log = ROOT / "build" / "binder-singleuser.log"
    singleuser = subprocess.Popen([str(bin_dir / "jupyterhub-singleuser"), f"--ServerApp.root_dir={ROOT}"]
                                  + (["--allow-root"] if os.geteuid() == 0 else []), cwd=ROOT, env=env,
                                  stdout=open(log, "w"), stderr=subprocess.STDOUT)
    try:
        status, _ = _wait_http(f"http://127.0.0.1:{port}{prefix}api/status", singleuser, log)
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)  # does not follow redirects
        connection.request("GET", f"{prefix}lab")
        response = connection.getresponse()
        lab_status, location = response.status, response.getheader("Location", "")
        connection.close()
    finally:
        _stop(singleuser)
        hub.shutdown()
    assert status == 403 and lab_status == 302 and location.startswith("/hub/api/oauth2/authorize"), \
        (status, lab_status, location, Path(log).read_text()[-2000:])
    print(f"jupyterhub-singleuser {jupyterhub.__version__} serves: the API refuses a request without a login "
          f"({status}), "
          f"JupyterLab's page sends the browser to the hub to log in ({lab_status})")


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"plan": plan, "requirements": requirements, "pip-check": pip_check, "serve": serve}[command](*args)
