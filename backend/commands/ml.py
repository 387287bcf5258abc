"""CLI commands of the model loop: train, prefill, demo."""
from __future__ import annotations

import secrets
import sys
import time
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select

from backend.core.errors import DomainError
from backend.db.extensions import db
from backend.db.models import IMAGE_STATUSES, Image, User
from backend.commands.core import bind_threaded_server, prepare_workspace, public_url, serve_until_interrupted
from backend.commands.progress import Progress
from backend.ml.defaults import CLASSIFIER_BACKBONE, SEGMENTER_ENCODER


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def train_and_report(kind: str, export_ref: str, options: dict, promote: str, allow_path: bool = True,
                     progress_bar: bool | None = None) -> dict:
    from backend.jobs.training import run_training

    bar = Progress(f"train {kind}", "step", progress_bar)
    try:
        summary = run_training(kind, export_ref, options, promote, progress=bar, allow_path=allow_path)
    except DomainError as err:
        raise click.ClickException(err.message) from None
    finally:
        bar.close()
    for warning in summary["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    metric = "IoU" if kind == "segmenter" else "accuracy"
    val = summary["val"] or {}
    line = f"{kind} model {summary['model_version_id']} ({summary['name']}): val {metric} {_fmt(summary['headline'])}"
    if kind == "segmenter":
        line += f", Dice {_fmt(val.get('dice'))}"
    else:
        line += f", macro F1 {_fmt(val.get('macro_f1'))}"
    test = summary.get("test") or {}
    if test:
        line += f"; test {metric} {_fmt(test.get('iou' if kind == 'segmenter' else 'accuracy'))}"
    line += f"; {summary['train_seconds']:.0f}s"
    click.echo(line)
    fit = summary.get("prefill_fit")
    if fit:
        click.echo(f"pre-fill fitted to {fit['images']} box-labelled image(s) ({fit['boxes']} boxes): probability cut "
                   f"{fit['threshold']:g}, grouping gap {fit['group_gap']:g}, regions scored under "
                   f"{fit['min_score']:g} not suggested; box AP50 {fit['ap50']:.3f} (unfitted "
                   f"{fit['base_ap50']:.3f})")
    comparison = summary.get("comparison")
    if comparison and comparison.get("current_id"):
        click.echo(f"current model {comparison['current_id']} scores {_fmt(comparison['current_value'])} on the same "
                   f"validation images")
    click.echo("promoted: now the current model" if summary["promoted"] else
               f"not promoted (promote with `python manage.py promote {summary['model_version_id']}` or the API)")
    return summary


@click.command("train")
@click.argument("kind", type=click.Choice(["segmenter", "classifier"]))
@click.option("--export", "export_ref", required=True,
              help="the export to train on: its id (`manage.py export` prints it) or a path to an export zip/folder")
@click.option("--epochs", type=click.IntRange(1, 1000), help="passes over the training set [segmenter 30, classifier 20]")
@click.option("--batch-size", type=click.IntRange(1, 1024), help="[segmenter 8, classifier 32]")
@click.option("--input-size", type=click.IntRange(32, 2048),
              help="letterbox side in pixels [segmenter 512 (a multiple of 32), classifier 128]")
@click.option("--lr", type=float, help="peak learning rate of the one-cycle schedule [2e-3]")
@click.option("--arch", default="Unet", show_default=True, help="segmenter architecture (segmentation_models_pytorch)")
@click.option("--encoder", default=SEGMENTER_ENCODER, show_default=True,
              help="segmenter encoder: an smp encoder name or tu-<timm model>")
@click.option("--backbone", default=CLASSIFIER_BACKBONE, show_default=True, help="classifier backbone (a timm model name)")
@click.option("--encoder-weights", type=click.Choice(["imagenet", "none"]), default=None,
              help="imagenet: start from ImageNet weights, which come installed for --encoder "
                   "tu-tf_efficientnet_lite0 and --backbone tf_efficientnet_lite0 and are downloaded for others when "
                   "the machine can (offline: random initialisation with a warning); none: random weights "
                   "[imagenet where the weights come installed, else none]")
@click.option("--device", default=None,
              help="auto, cpu, cuda or cuda:N [INKLABEL_DEVICE, else auto: CUDA when present]; a missing GPU falls "
                   "back to the CPU with a warning")
@click.option("--workers", type=click.IntRange(0, 64), help="data loader processes [0 on CPU, up to 8 on CUDA]")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--time-limit", type=float, help="a time budget in seconds: the learning-rate schedule anneals within it and training stops when it is spent")
@click.option("--promote", "promote", flag_value="always", help="make the new model current whatever it scores")
@click.option("--promote-if-better", "promote", flag_value="if_better",
              help="make it current when it does at least as well as the current model on the same validation images")
@click.option("--no-promote", "promote", flag_value="never", default=True, help="only register it (the default)")
@click.option("--progress/--no-progress", default=None, help="progress bar (default: only on a terminal)")
@with_appcontext
def train_command(kind, export_ref, epochs, batch_size, input_size, lr, arch, encoder, backbone, encoder_weights,
                  device, workers, seed, time_limit, promote, progress):
    """Train the segmenter (tattoo vs background) or the style classifier on an export.

    \b
    Reads the export's images/ + masks/ (segmenter) or crops/ (classifier),
    trains with augmentation, validates after every epoch, keeps the best
    epoch and evaluates it on the val (and test) split. The weights go to the
    workspace's models/ folder as safetensors with a JSON sidecar, and a model
    version is registered with its metrics.

    \b
    On the CPU, torch uses the CPUs this process may use (INKLABEL_TORCH_THREADS
    overrides; on a machine other jobs share, 1 thread can be faster than 2).
    On CUDA: bf16 autocast, channels_last, DataLoader workers.

    \b
    Example:
      python manage.py export --formats masks,crops
      python manage.py train segmenter --export <id> --epochs 20 --promote-if-better
      python manage.py train classifier --export <id> --promote-if-better
    """
    prepare_workspace()
    options = {"seed": seed}
    for key, value in (("epochs", epochs), ("batch_size", batch_size), ("input_size", input_size), ("lr", lr),
                       ("device", device), ("workers", workers), ("time_limit", time_limit)):
        if value is not None:
            options[key] = value
    if encoder_weights is not None:
        options["encoder_weights"] = encoder_weights
    if kind == "segmenter":
        options.update(arch=arch, encoder=encoder)
        if input_size is not None and input_size % 32:
            raise click.BadParameter("a segmenter's input size must be a multiple of 32", param_hint="--input-size")
    else:
        options["backbone"] = backbone
    try:
        train_and_report(kind, export_ref, options, promote, allow_path=True, progress_bar=progress)
    except ValueError as err:
        raise click.ClickException(str(err)) from None


@click.command("promote")
@click.argument("model_id", type=int)
@with_appcontext
def promote_command(model_id):
    """Make model version MODEL_ID the current one of its kind (what pre-fill uses)."""
    from backend.jobs.training import promote_model

    prepare_workspace()
    try:
        mv = promote_model(model_id)
    except DomainError as err:
        raise click.ClickException(err.message) from None
    click.echo(f"{mv.kind} model {mv.id} ({mv.name}) is now current")


@click.command("prefill")
@click.option("--all", "all_images", is_flag=True, help="every image, whatever its status")
@click.option("--status", "statuses", multiple=True, type=click.Choice(IMAGE_STATUSES),
              help="images with this status (repeatable) [default: new]")
@click.option("--batch-size", type=click.IntRange(1, 1024), default=8, show_default=True,
              help="images per forward pass (larger batches pay off on a GPU)")
@click.option("--refresh", is_flag=True, help="recompute images that already have a prediction from these models")
@click.option("--device", default=None, help="auto, cpu, cuda or cuda:N [INKLABEL_DEVICE, else auto]")
@click.option("--progress/--no-progress", default=None, help="progress bar (default: only on a terminal)")
@with_appcontext
def prefill_command(all_images, statuses, batch_size, refresh, device, progress):
    """Pre-fill the pool with the current models: regions, style suggestions, concentration and uncertainty.

    Results are cached per image and model versions (what the editor's pre-fill button and the active-learning
    queue read); images already done by the current models are skipped unless --refresh. On CUDA, a batch is
    classified and stored while the GPU runs the next.
    """
    from backend.ml.device import resolve_device
    from backend.jobs.prefill import prefill_images, select_pool

    prepare_workspace()
    ids = select_pool(None if all_images else (list(statuses) or ["new"]))
    bar = Progress("prefill", "img", progress)
    try:
        stats = prefill_images(ids, batch_size=batch_size, refresh=refresh, progress=bar,
                               device=resolve_device(device or current_app.config.get("DEVICE", "auto")))
    except DomainError as err:
        raise click.ClickException(err.message) from None
    finally:
        bar.close()
    click.echo(f"pre-filled {stats['done']} image(s), skipped {stats['skipped']} already done, "
               f"{stats['failed']} failed, in {stats['seconds']:.1f}s")
    for error in stats["errors"]:
        click.echo(f"  image {error['image_id']}: {error['error']}", err=True)


# --- demo ----------------------------------------------------------------------------------------------------------

def populate_synthetic(n_images: int, label_fraction: float, user: User, seed: int = 0,
                       progress=None, **synth_options) -> dict:
    """Ingest n procedural images (source "synthetic"); label the first `label_fraction` of them through
    save_document with their exact masks and styles, submit them and accept them as `user` (a reviewer/admin).
    `synth_options` go to backend.ml.synth.generate_image (width, height, p_empty, ...).
    Returns {"labelled": [ids], "unlabelled": [ids]}."""
    from backend.core.annotations import save_document, submit_image
    from backend.core.ingest import ingest_bytes
    from backend.ml.prefill import image_mask_geometry
    from backend.ml.synth import generate_image
    from backend.core.workflow.review import review_image

    labelled, unlabelled = [], []
    n_label = int(round(n_images * label_fraction))
    for i in range(n_images):
        sample = generate_image(seed + i, **synth_options)
        result = ingest_bytes(sample.jpeg_bytes(), f"synthetic-{seed + i:05d}.jpg", source="synthetic",
                              user_id=user.id)
        image_id = result.image.id
        if i < n_label and not result.duplicate:
            regions = []
            for tattoo in sample.tattoos:
                geometry = image_mask_geometry(tattoo.mask, 1.0, simplify_tolerance=0.75, min_area=2.0)
                if geometry is not None:
                    regions.append({"geometry": geometry, "style": tattoo.style, "motifs": tattoo.motifs,
                                    "source": "human"})
            save_document(image_id, user, 0, regions, {"styles": sample.styles, "flags": []})
            submit_image(image_id)
            review_image(db.session, image_id, user, "accept", "synthetic ground truth (demo)")
            db.session.commit()
            labelled.append(image_id)
        else:
            unlabelled.append(image_id)
        if progress:
            progress(i + 1, n_images, f"{len(labelled)} labelled")
    return {"labelled": labelled, "unlabelled": unlabelled}


DEMO_SEGMENTER = {"input_size": 192, "batch_size": 8, "lr": 3e-3}
DEMO_SEGMENTER_EPOCHS = 12  # for 120 labelled images; scaled to keep the number of steps (3 to 30 epochs)
DEMO_SECONDS = 180  # the demo's budget on 2 CPU cores
DEMO_AFTER_SEGMENTER = 50  # seconds after the segmenter: its last validation, the classifier and pre-fill
DEMO_CLASSIFIER = {"input_size": 64, "batch_size": 32, "lr": 3e-3}


@click.command("demo")
@click.option("--images", "n_images", type=click.IntRange(4, 100_000), default=200, show_default=True,
              help="procedural images to generate")
@click.option("--label-fraction", type=click.FloatRange(0.1, 0.95), default=0.6, show_default=True,
              help="share of them labelled (exact synthetic masks and styles) and accepted; the rest is pre-filled")
@click.option("--epochs", type=click.IntRange(1, 1000), default=None,
              help="segmenter epochs [fitted to the 3-minute budget: 12 for 200 images, and stopped early when a busy "
                   "machine would overrun it]; the classifier gets as many")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--username", default="demo", show_default=True)
@click.option("--password", default=None, help="the demo login's password [random, printed]")
@click.option("--serve/--no-serve", default=True, help="start the server afterwards (--no-serve: build and exit)")
@click.option("--host", default="127.0.0.1", show_default=True, envvar="INKLABEL_HOST",
              help="address to listen on (0.0.0.0 for all) [INKLABEL_HOST]")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535), envvar="INKLABEL_PORT",
              help="port to listen on [INKLABEL_PORT]")
@click.option("--progress/--no-progress", default=None, help="progress bars (default: only on a terminal)")
@click.option("--real", "real_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="a folder of real photos with YOLO boxes (e.g. ../shared/data/real-tattoos): imported with their "
                   "boxes and used as skin for composites, so the segmenter learns from them too")
@with_appcontext
def demo_command(n_images, label_fraction, epochs, seed, username, password, serve, host, port, progress,
                 real_dir=None):
    """Build a demo workspace, train small models on it, pre-fill, and serve it.

    \b
    In a fresh workspace (INKLABEL_WORKSPACE, default annotations/): generates
    procedural tattoo photos (marked source "synthetic"; they are not real
    data), labels and accepts part of them, exports them, trains a small
    segmenter and style classifier on the CPU (about 2½ minutes on 2 idle
    cores for 200 images; on a busy machine the segmenter stops early to keep
    within 3 minutes), promotes both, pre-fills the other images, creates an admin
    login and starts the server. --no-serve stops after building.
    """
    from backend.web.auth import create_user
    from backend.datasets.export import create_export
    from backend.jobs.prefill import prefill_images

    started = time.monotonic()
    click.get_current_context().meta["inklabel.pool_refresh"] = True  # the demo pre-fills the pool itself
    prepare_workspace()
    existing = db.session.scalar(select(func.count(Image.id)))
    if existing:
        raise click.ClickException(
            f"the workspace {current_app.config['WORKSPACE']} already has {existing} image(s); the demo builds a "
            "fresh one: INKLABEL_WORKSPACE=/tmp/inklabel-demo python manage.py demo (or, to start this one over, "
            "delete everything in it but taxonomy.json)")
    # Bound before the long build, so a port in use is said at once rather than after minutes.
    server = bind_threaded_server(current_app._get_current_object(), host, port) if serve else None
    password = password or secrets.token_urlsafe(9)
    try:
        user = create_user(username, password, "admin")
    except ValueError as err:
        raise click.ClickException(str(err)) from None

    bar = Progress("images", "img", progress)
    try:
        pool = populate_synthetic(n_images, label_fraction, user, seed, progress=bar)
    finally:
        bar.close()
    click.echo(f"{n_images} synthetic images, {len(pool['labelled'])} labelled and accepted "
               f"({time.monotonic() - started:.0f}s)")
    if real_dir is not None:
        from backend.commands.real_photos import add_real_photos

        click.echo(add_real_photos(real_dir, user, max(4, len(pool["labelled"]) // 2), seed))
    stage = time.monotonic()

    bar = Progress("export", "img", progress)
    try:
        export = create_export({"formats": ["masks", "crops"], "split": {"val": 0.15, "test": 0.0, "seed": seed},
                                "filter": {"status": ["accepted"]}}, user_id=user.id, progress=bar)
    finally:
        bar.close()
    export_id = export.id
    click.echo(f"export {export_id} ({time.monotonic() - stage:.0f}s)")

    seg_epochs = epochs or max(3, min(30, int(DEMO_SEGMENTER_EPOCHS * 120 / max(1, len(pool["labelled"])))))
    seg_options = {**DEMO_SEGMENTER, "epochs": seg_epochs, "seed": seed, "device": "cpu"}
    if epochs is None:  # a busy machine: stop after the epoch that would make the demo overrun its budget
        seg_options["time_limit"] = max(30.0, DEMO_SECONDS - DEMO_AFTER_SEGMENTER - (time.monotonic() - started))
    seg = train_and_report("segmenter", export_id, seg_options, "always", allow_path=False, progress_bar=progress)
    cls = None
    try:
        cls = train_and_report("classifier", export_id, {**DEMO_CLASSIFIER, "epochs": epochs or 12, "seed": seed,
                                                         "device": "cpu"}, "always", allow_path=False,
                               progress_bar=progress)
    except click.ClickException as err:  # e.g. a tiny demo with crops of one style only
        click.echo(f"classifier skipped: {err.message}", err=True)

    bar = Progress("prefill", "img", progress)
    try:
        stats = prefill_images(pool["unlabelled"], batch_size=8, progress=bar)
    finally:
        bar.close()
    click.echo(f"pre-filled {stats['done']} image(s) in {stats['seconds']:.1f}s")
    from backend.jobs.scores import refresh_scores  # the queue ranks by uncertainty from the first image served

    scores = refresh_scores(db.session)
    click.echo(f"active-learning scores for {scores['scored']} image(s)")
    elapsed = time.monotonic() - started
    db.session.remove()
    click.echo("")
    click.echo(f"demo ready in {elapsed:.0f}s: workspace {current_app.config['WORKSPACE']}")
    click.echo(f"  segmenter {seg['model_version_id']} val IoU {_fmt(seg['headline'])}"
               + (f", classifier {cls['model_version_id']} val accuracy {_fmt(cls['headline'])}" if cls else ""))
    click.echo(f"  login: {username} / {password}")
    if serve:
        click.echo(f"  open {public_url(host, server.server_port)}")
        sys.stdout.flush()
        from backend.serve.warmup import start_model_warmup

        start_model_warmup(current_app._get_current_object())
        serve_until_interrupted(server)


COMMANDS = [train_command, promote_command, prefill_command, demo_command]
