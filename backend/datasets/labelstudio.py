"""Label Studio JSON (`labelstudio/{split}.json` + `labelstudio/config.xml`), written for import into a Label
Studio project and read back by the importer.

Each file is a list of tasks, as Label Studio's JSON export: `{"id", "data": {"image"}, "annotations":
[{"result": [...]}]}`. Results use percent coordinates of the image (`original_width` / `original_height` carry
its size):

- a region is a `polygonlabels` result per part (`value.points` in percent, `closed: true`, label `tattoo`); a box
  region is a `rectanglelabels` result (`x, y, width, height` in percent, `rotation: 0`);
- the region's style is a `choices` result with the region's own result id and `from_name: "style"` (Label
  Studio's per-region classification), its motifs a `taxonomy`-free `choices` result `from_name: "motifs"`;
- image styles and flags are image-level `choices` results (`from_name: "image_styles"` / `"flags"`);
- the region id, source and part number are kept in the result's `meta` (`{"inklabel": {...}}`), which Label
  Studio stores and exports with the result; parts of one region share the region id there;
- `data.image` is `images/{split}/<sha256>.jpg` relative to the export root (serve it, or set Label Studio's
  local-files storage to that folder); `config.xml` is the labelling interface with these control names.
- **holes**: Label Studio polygons have none, so a polygon with holes is one bridged ring (backend/datasets/yolo.py).

Reading accepts Label Studio's own export: `polygonlabels` / `polygon`, `rectanglelabels` / `rectangle` (rotation
0 -> a box region, rotated -> a polygon), `ellipselabels`, `choices` (per region when the id matches a region,
else for the image). A label that is a style key is the region's style. Image files are found by their path inside
the dataset, or by file name (Label Studio's `/data/upload/<project>/<hash>-<name>` is tried as `<name>` too).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from backend.datasets.boxes import DEFAULT_CLASS, box_corners, box_geometry, is_box
from backend.datasets.yolo import geometry_rings

IMAGE_CONTROL = "image"
DECIMALS = 6


def _pct(value: float, size: int) -> float:
    return round(value * 100.0 / size, DECIMALS)


def task(task_id: int, image: str, width: int, height: int, regions: list[dict], tags: dict) -> dict:
    results = []
    common = {"to_name": IMAGE_CONTROL, "original_width": width, "original_height": height, "image_rotation": 0}
    for number, region in enumerate(regions, start=1):
        rid = region.get("id") or f"r{number}"
        meta = {"region_id": rid, "source": region.get("source", "human")}
        if is_box(region):
            x0, y0, x1, y1 = box_corners(region["geometry"])
            results.append({"id": rid, "type": "rectanglelabels", "from_name": "label", **common,
                            "value": {"x": _pct(x0, width), "y": _pct(y0, height), "width": _pct(x1 - x0, width),
                                      "height": _pct(y1 - y0, height), "rotation": 0,
                                      "rectanglelabels": [DEFAULT_CLASS]},
                            "meta": {"inklabel": {**meta, "part": 0}}})
        else:
            for part, ring in enumerate(geometry_rings(region["geometry"])):
                results.append({"id": rid if part == 0 else f"{rid}~{part}", "type": "polygonlabels",
                                "from_name": "label", **common,
                                "value": {"points": [[_pct(x, width), _pct(y, height)] for x, y in ring],
                                          "closed": True, "polygonlabels": [DEFAULT_CLASS]},
                                "meta": {"inklabel": {**meta, "part": part}}})
        if region.get("style"):
            results.append({"id": rid, "type": "choices", "from_name": "style", **common,
                            "value": {"choices": [region["style"]]}})
        if region.get("motifs"):
            results.append({"id": rid, "type": "choices", "from_name": "motifs", **common,
                            "value": {"choices": list(region["motifs"])}})
    for control, values in (("image_styles", tags.get("styles")), ("flags", tags.get("flags"))):
        if values:
            results.append({"id": f"{control}-{task_id}", "type": "choices", "from_name": control, **common,
                            "value": {"choices": list(values)}})
    return {"id": task_id, "data": {"image": image},
            "annotations": [{"id": task_id, "result": results, "was_cancelled": False}]}


def labeling_config(styles: list[str], flags: list[str]) -> str:
    """The labelling interface whose control names the tasks use."""
    def options(values):
        return "".join(f'<Choice value="{v}"/>' for v in values)

    return (
        "<View>\n"
        f'  <Image name="{IMAGE_CONTROL}" value="$image" zoom="true"/>\n'
        f'  <PolygonLabels name="label" toName="{IMAGE_CONTROL}"><Label value="{DEFAULT_CLASS}"/></PolygonLabels>\n'
        f'  <RectangleLabels name="box" toName="{IMAGE_CONTROL}"><Label value="{DEFAULT_CLASS}"/></RectangleLabels>\n'
        f'  <Choices name="style" toName="{IMAGE_CONTROL}" perRegion="true" choice="single">{options(styles)}</Choices>\n'
        f'  <Choices name="motifs" toName="{IMAGE_CONTROL}" perRegion="true" choice="multiple"></Choices>\n'
        f'  <Choices name="image_styles" toName="{IMAGE_CONTROL}" choice="multiple">{options(styles)}</Choices>\n'
        f'  <Choices name="flags" toName="{IMAGE_CONTROL}" choice="multiple">{options(flags)}</Choices>\n'
        "</View>\n"
    )


# --- reading ------------------------------------------------------------------------------------------------------


@dataclass
class LsTask:
    name: str
    image: str | None
    width: int | None = None
    height: int | None = None
    shapes: list[dict] = field(default_factory=list)  # {"id", "kind", "geometry", "label", "meta"}
    choices: dict = field(default_factory=dict)  # result id -> {from_name: [values]}
    image_choices: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def is_labelstudio(document) -> bool:
    tasks = document if isinstance(document, list) else [document]
    return bool(tasks) and all(isinstance(t, dict) and isinstance(t.get("data"), dict) for t in tasks)


def _finite(values) -> list[float]:
    out = [float(v) for v in values]
    if not all(math.isfinite(v) for v in out):
        raise ValueError("coordinates must be finite numbers")
    return out


def _size(result: dict, task: LsTask) -> tuple[int, int]:
    width, height = result.get("original_width"), result.get("original_height")
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        raise ValueError("original_width / original_height missing: percent coordinates need the image size")
    if task.width is None:
        task.width, task.height = width, height
    elif (task.width, task.height) != (width, height):
        raise ValueError("results disagree on the image size")
    return width, height


def _geometry(result: dict, task: LsTask) -> tuple[str, dict]:
    value = result.get("value")
    if not isinstance(value, dict):
        raise ValueError("no value")
    width, height = _size(result, task)
    kind = result.get("type", "").replace("labels", "")
    if kind == "polygon":
        points = value.get("points")
        if not isinstance(points, list) or len(points) < 3 or not all(isinstance(p, list) and len(p) == 2 for p in points):
            raise ValueError("a polygon needs at least 3 points [x, y]")
        ring = [[x * width / 100.0, y * height / 100.0] for x, y in (_finite(p) for p in points)]
        return "mask", {"type": "Polygon", "coordinates": [ring + [ring[0]]]}
    if kind in ("rectangle", "ellipse"):
        x, y, w, h = _finite([value.get(k) for k in ("x", "y", "width", "height")]) if kind == "rectangle" else \
            _finite([value.get(k) for k in ("x", "y", "radiusX", "radiusY")])
        rotation = float(value.get("rotation") or 0)
        sx, sy = width / 100.0, height / 100.0
        if kind == "ellipse":
            from backend.datasets.cvat import ellipse_geometry

            return "mask", ellipse_geometry(x * sx, y * sy, w * sx, h * sy, rotation)
        if rotation % 360 == 0:
            return "box", box_geometry(x * sx, y * sy, (x + w) * sx, (y + h) * sy)
        a = math.radians(rotation)  # Label Studio rotates a rectangle about its top-left corner
        corners = [(0, 0), (w * sx, 0), (w * sx, h * sy), (0, h * sy)]
        ring = [[x * sx + cx * math.cos(a) - cy * math.sin(a), y * sy + cx * math.sin(a) + cy * math.cos(a)]
                for cx, cy in corners]
        return "mask", {"type": "Polygon", "coordinates": [ring + [ring[0]]]}
    raise ValueError(f"result type {result.get('type')!r} has no area")


def read_tasks(document) -> list[LsTask]:
    tasks = document if isinstance(document, list) else [document]
    out = []
    for position, raw in enumerate(tasks):
        data = raw.get("data") if isinstance(raw, dict) else None
        image = data.get("image") if isinstance(data, dict) else None
        item = LsTask(name=f"task {raw.get('id', position) if isinstance(raw, dict) else position}",
                      image=image if isinstance(image, str) else None)
        annotations = [a for a in raw.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")] \
            if isinstance(raw, dict) else []
        if not annotations and isinstance(raw, dict):
            annotations = [p for p in raw.get("predictions") or [] if isinstance(p, dict)]
        for result in (annotations[-1].get("result") or []) if annotations else []:
            if not isinstance(result, dict):
                item.problems.append("a result is not an object")
                continue
            kind = result.get("type")
            try:
                if kind == "choices":
                    values = [v for v in (result.get("value") or {}).get("choices") or [] if isinstance(v, str)]
                    item.choices.setdefault(result.get("id"), {}).setdefault(result.get("from_name"), []).extend(values)
                    continue
                if kind in ("polygonlabels", "polygon", "rectanglelabels", "rectangle", "ellipselabels", "ellipse"):
                    shape_kind, geometry = _geometry(result, item)
                    labels = (result.get("value") or {}).get(kind if kind.endswith("labels") else "labels") or []
                    meta = result.get("meta") if isinstance(result.get("meta"), dict) else {}
                    item.shapes.append({"id": result.get("id"), "kind": shape_kind, "geometry": geometry,
                                        "label": labels[0] if labels and isinstance(labels[0], str) else None,
                                        "meta": meta.get("inklabel") if isinstance(meta.get("inklabel"), dict) else {}})
                else:
                    item.ignored.append(str(kind)[:32])
            except (ValueError, TypeError) as err:
                item.problems.append(f"result {str(result.get('id'))[:40]} ({kind}): {err}")
        region_ids = {s["id"] for s in item.shapes}
        for rid, controls in list(item.choices.items()):
            if rid not in region_ids:
                for values in controls.values():
                    item.image_choices.extend(values)
        out.append(item)
    return out


__all__ = ["LsTask", "is_labelstudio", "labeling_config", "read_tasks", "task"]
