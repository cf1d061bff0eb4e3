"""scripts/tune_fedavg.py, the way notebook 05's hyper-parameters were chosen, runs (quick mode)."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_tuning_script_trains_and_measures_the_validation_writers(tmp_path):
    out = tmp_path / "tune.json"
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "tune_fedavg.py"), "--quick", "--only", "05's",
                             "--seeds", "1", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["train_writers"] == 90 and len(report["validation_writers"]) == 14
    (run,) = report["results"].values()
    curve = run["validation_accuracy"]
    assert list(curve) == ["1", "2", "3"] and all(0.0 < a <= 1.0 for a in curve.values())
    assert run["seed"] == 1
