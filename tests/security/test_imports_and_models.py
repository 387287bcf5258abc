"""No SSRF through imports, no code execution through model files, no dynamic SQL: behaviour plus source checks."""
from __future__ import annotations

import ast
import io
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ..support import hostile
from ..support.world import build_world

BACKEND = Path(__file__).resolve().parents[2] / "backend"


class _Recorder(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        _Recorder.hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"\xff\xd8\xff")

    def log_message(self, *args):
        pass


@pytest.fixture
def listener():
    _Recorder.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


def _import(world, data: bytes, name: str, fmt: str):
    return world.admin.client.client.post(f"/api/v1/imports?format={fmt}", data={"file": (io.BytesIO(data), name)},
                                          content_type="multipart/form-data",
                                          headers={"Authorization": f"Bearer {world.admin.token}"})


def test_imports_never_fetch_urls(app, listener):
    """COCO coco_url / flickr_url / file_name and LabelMe imagePath pointing at a server: nothing is fetched, the
    items are reported as skipped, and no image is added."""
    world = build_world(app)
    coco = {"images": [{"id": 1, "file_name": f"{listener}/a.jpg", "coco_url": f"{listener}/b.jpg",
                        "flickr_url": f"{listener}/c.jpg", "width": 64, "height": 48},
                       {"id": 2, "file_name": "//127.0.0.1/share/d.jpg", "width": 64, "height": 48}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[1, 1, 9, 1, 9, 9]],
                             "bbox": [1, 1, 8, 8], "area": 32, "iscrowd": 0}],
            "categories": [{"id": 1, "name": "tattoo"}]}
    labelme = {"version": "5.0.0", "shapes": [], "imagePath": f"{listener}/e.jpg", "imageData": None,
               "imageHeight": 48, "imageWidth": 64}
    zipped = hostile.zip_of([("annotations/instances.json", json.dumps(coco).encode()),
                             ("labels/x.json", json.dumps(labelme).encode())])
    for data, name, fmt in ((json.dumps(coco).encode(), "coco.json", "coco"), (zipped, "set.zip", "coco"),
                            (zipped, "set.zip", "labelme")):
        resp = _import(world, data, name, fmt)
        assert resp.status_code == 202, resp.get_json()
        job = world.admin.client.get(f"/api/v1/jobs/{resp.get_json()['job_id']}").get_json()
        assert job["status"] in ("succeeded", "failed"), job
        if job["status"] == "succeeded":
            assert job["result"].get("images_added", 0) == 0, job["result"]
            reasons = " ".join(item["reason"] for item in job["result"]["skipped"])
            assert fmt != "coco" or "never downloaded" in reasons, reasons
    assert _Recorder.hits == [], f"the server fetched {_Recorder.hits}"
    images = world.admin.client.get("/api/v1/images").get_json()
    assert images["total"] == 3  # the world's own three


def test_loader_refuses_pickles_without_running_them(tmp_path):
    from backend.ml.weights import UnsafeModelFile, load_bundle

    marker = tmp_path / "PWNED"
    for name, data in (("a.safetensors", hostile.pickle_payload(marker)),
                       ("b.safetensors", hostile.torch_zip_payload(marker)),
                       ("c.safetensors", hostile.protocol0_payload(marker)),
                       ("d.pt", hostile.pickle_payload(marker)),
                       ("e.pkl", hostile.pickle_payload(marker))):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(UnsafeModelFile) as err:
            load_bundle(tmp_path / name, root=tmp_path)
        assert name in str(err.value)
    assert not marker.exists(), "a pickle payload was executed"


def test_loader_refuses_a_sidecar_naming_code(tmp_path):
    """A genuine safetensors file whose sidecar names an architecture outside the registries: refused cleanly."""
    from backend.ml.weights import UnsafeModelFile, load_bundle

    from ..support.bad_inputs import safetensors_with_sidecar

    data, sidecar = safetensors_with_sidecar({"kind": "segmenter", "arch": "os.system", "encoder": "id"})
    (tmp_path / "evil.safetensors").write_bytes(data)
    (tmp_path / "evil.json").write_text(json.dumps(sidecar))
    with pytest.raises(UnsafeModelFile, match="architecture"):
        load_bundle("evil.safetensors", root=tmp_path)


# --- source checks ------------------------------------------------------------------------------------------------

def _sources():
    for path in sorted(BACKEND.rglob("*.py")):
        yield path, path.read_text()


FORBIDDEN = {
    r"\btorch\.load\s*\(": "torch.load unpickles: load safetensors (backend/ml/weights.py)",
    r"\bpickle\.loads?\s*\(|\bcPickle\b|\bdill\b|\bjoblib\.load\b": "unpickling",
    r"allow_pickle\s*=\s*True": "numpy pickles",
    r"\byaml\.load\s*\(": "yaml.load (use safe_load)",
    r"shell\s*=\s*True": "a shell",
    r"^\s*(?:import|from)\s+(?:requests|httpx|urllib\.request|urllib3|aiohttp|pycurl)\b":
        "an HTTP client (SSRF surface)",
    r"\burlopen\s*\(": "urlopen (SSRF surface)",
}


# The one pickle the backend reads: the ImageNet checkpoint inside an installed package, from the package's own
# folder, with torch's weights_only loader (backend/ml/packaged_weights.py; docs/security.md).
PACKAGED_CHECKPOINT = ("ml/packaged_weights.py", "torch.load(path, map_location=\"cpu\", weights_only=True)")


def test_backend_has_no_unpickling_eval_or_http_fetching():
    found, exceptions = [], 0
    for path, text in _sources():
        for pattern, why in FORBIDDEN.items():
            for match in re.finditer(pattern, text, re.MULTILINE):
                line = text.count("\n", 0, match.start()) + 1
                relative = path.relative_to(BACKEND).as_posix()
                if (relative, text[match.start():text.index(")", match.start()) + 1]) == PACKAGED_CHECKPOINT:
                    exceptions += 1
                    continue
                found.append(f"{path.relative_to(BACKEND.parent)}:{line}: {why}")
    assert not found, "\n".join(found)
    assert exceptions == 1  # the exception is exactly that call, once


def _model_classes() -> set[str]:
    from backend.db import models

    return {name for name, obj in vars(models).items() if isinstance(obj, type) and hasattr(obj, "__table__")}


def _fixed_text(node) -> bool:
    """A literal, a module constant, or a choice / concatenation of those: text no request can shape."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Name):
        return node.id.isupper()
    if isinstance(node, ast.IfExp):
        return _fixed_text(node.body) and _fixed_text(node.orelse)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _fixed_text(node.left) and _fixed_text(node.right)
    return False


def test_no_user_text_reaches_sql_or_orm_attribute_lookups():
    """SQL text is always a constant (or built from the schema's own table names), models' attributes are never
    looked up by a computed name and nothing is eval'd — so a filter or sort key from a request cannot name a
    column, and no text becomes code."""
    models = _model_classes()
    problems = []
    for path, text in _sources():
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            where = f"{path.relative_to(BACKEND.parent)}:{node.lineno}"
            if name in ("text", "exec_driver_sql", "literal_column") and node.args and \
                    not _fixed_text(node.args[0]):
                arg = ast.unparse(node.args[0])
                if not re.search(r"\b(table|tables|t)\.name\b|\bname\b.*for .* in .*sorted_tables", arg):
                    problems.append(f"{where}: {name}({arg}) is not a constant")
            if name == "getattr" and node.args and isinstance(node.args[0], ast.Name) and \
                    node.args[0].id in models and not isinstance(node.args[1], ast.Constant):
                problems.append(f"{where}: getattr({node.args[0].id}, {ast.unparse(node.args[1])})")
            if isinstance(func, ast.Name) and func.id in ("eval", "exec", "compile", "__import__"):
                problems.append(f"{where}: {func.id}()")
            if name in ("order_by", "filter_by") and any(isinstance(a, ast.Constant) and isinstance(a.value, str)
                                                       for a in node.args):
                problems.append(f"{where}: {name} with a string argument")
    assert not problems, "\n".join(problems)
