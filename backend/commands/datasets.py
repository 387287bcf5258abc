"""CLI commands: export (training sets out). Imports are `manage.py import PATH --format ...` (commands/ingest.py)."""
from __future__ import annotations

import shutil
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from backend.commands.core import prepare_workspace
from backend.commands.progress import Progress


def _every_format() -> str:
    from backend.datasets.options import FORMATS  # pydantic and numpy: only when the command runs

    return ",".join(FORMATS)


@click.command("export")
@click.option("--formats", default=_every_format, show_default="all of them",
              help="comma-separated: coco (COCO instances), masks (semantic + 16-bit instance PNGs), crops "
                   "(per-region JPEGs for the style classifier + crops/labels.csv), yolo (YOLO-seg), labelme, "
                   "cvat (CVAT for images 1.1 XML), labelstudio (Label Studio JSON + labelling config)")
@click.option("--categories", type=click.Choice(("tattoo", "styles")), default="tattoo", show_default=True,
              help="tattoo: one class, styles as COCO attributes. styles: class 'tattoo' (no or untrainable style) "
                   "plus one per trainable style, the same in COCO categories, yolo/data.yaml names and "
                   "masks_class/ (class-index PNGs, legend.json)")
@click.option("--status", "statuses", default="accepted", show_default=True,
              help="comma-separated image statuses to export, e.g. accepted,submitted")
@click.option("--styles", default="", help="comma-separated style keys: only images with any of them (default: all)")
@click.option("--flags", default="", help="comma-separated flag keys: only images with any of them (default: all)")
@click.option("--split", "split_spec", default="val=0.1,test=0.1,seed=0", show_default=True,
              help="val and test shares, seed, and distance (pHash bits) under which images count as near-"
                   "duplicates and stay in one split, e.g. val=0.1,test=0.1,seed=0,distance=8")
@click.option("--images/--no-images", default=True, show_default=True,
              help="include images/{split}/<sha256>.jpg (COCO, LabelMe and YOLO refer to them)")
@click.option("--crop-margin", type=float, default=0.1, show_default=True,
              help="context around each crop, as a share of the region's longer side")
@click.option("--mask-crops", is_flag=True, help="paint crop pixels outside the region with the ImageNet mean")
@click.option("--include-excluded", is_flag=True,
              help="also write images flagged out of training to a separate 'excluded' split")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="also copy the zip to this file (it stays in the workspace's exports/ either way)")
@click.option("--progress/--no-progress", default=None, help="progress bar (default: only on a terminal)")
@with_appcontext
def export_command(formats, categories, statuses, styles, flags, split_spec, images, crop_margin, mask_crops,
                   include_excluded, out, progress):
    """Write a training set zip: images, COCO, masks, crops, YOLO-seg, LabelMe, CVAT and Label Studio with
    leak-free splits.

    \b
    By default only accepted images are exported. Images flagged not-a-tattoo,
    bad example, store front or artist portrait are left out of the training
    splits (manifest.json lists them). Near-duplicate images (perceptual hash)
    always land in the same split; the same data, options and seed give the
    same files with the same sha256 (listed in manifest.json).
    The zip is written to <workspace>/exports/<export id>.zip; its path is
    printed on stdout at the end.
    """
    from pydantic import ValidationError

    from backend.datasets.export import create_export
    from backend.datasets.options import ExportOptions, parse_split_spec

    prepare_workspace()
    try:
        options = {
            "formats": [f.strip() for f in formats.split(",") if f.strip()],
            "categories": categories,
            "filter": {"status": [s.strip() for s in statuses.split(",") if s.strip()],
                       "styles": [s.strip() for s in styles.split(",") if s.strip()],
                       "flags": [s.strip() for s in flags.split(",") if s.strip()]},
            "split": parse_split_spec(split_spec),
            "images": images,
            "crops": {"margin": crop_margin, "mask_background": mask_crops},
            "include_excluded": include_excluded,
        }
        options = ExportOptions.model_validate(options)
    except ValueError as err:
        if isinstance(err, ValidationError):
            first = err.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            raise click.BadParameter(f"{where}: {first['msg']}") from None
        raise click.BadParameter(str(err)) from None
    bar = Progress("export", "img", progress)
    try:
        export = create_export(options, progress=bar)
    finally:
        bar.close()
    path = Path(current_app.config["WORKSPACE"]) / "exports" / export.path
    counts = (export.manifest or {}).get("counts", {})
    images_per_split = ", ".join(f"{k} {v}" for k, v in counts.get("images", {}).items())
    click.echo(f"export {export.id}: {images_per_split}; {counts.get('excluded_images', 0)} excluded, "
               f"{counts.get('skipped_images', 0)} skipped; {export.size_bytes:,} bytes", err=True)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out)
        path = out
    click.echo(str(path))


COMMANDS = [export_command]
