"""Install the course's Jupyter settings into this Python's environment (make setup, binder/postBuild).

- overrides.json -> <prefix>/share/jupyter/lab/settings/overrides.json (JupyterLab's defaults)
- jupyter_server_config.json -> merged into <prefix>/etc/jupyter/jupyter_server_config.json (the
  server reads that file, not a .d folder, for its own settings; other keys already there are kept)
"""
import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
prefix = Path(sys.prefix)

settings = prefix / "share" / "jupyter" / "lab" / "settings"
settings.mkdir(parents=True, exist_ok=True)
shutil.copyfile(HERE / "overrides.json", settings / "overrides.json")

target = prefix / "etc" / "jupyter" / "jupyter_server_config.json"
target.parent.mkdir(parents=True, exist_ok=True)
config = json.loads(target.read_text()) if target.exists() else {}
for section, values in json.loads((HERE / "jupyter_server_config.json").read_text()).items():
    config.setdefault(section, {}).update(values)
target.write_text(json.dumps(config, indent=2) + "\n")
