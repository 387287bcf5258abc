"""Training loops on a tiny procedural export: the loss falls, the segmenter beats an all-background baseline, the
classifier reports per-style metrics; device selection falls back to the CPU."""
import warnings

import numpy as np
import pytest
import torch

from backend.ml import device as devmod
from backend.ml.data import ExportError, open_export
from backend.ml.synth import write_export_folder
from backend.ml.train import TrainOptions, train_model

from ..support.models import TINY_DECODER

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    write_export_folder(root, 24, seed=5, width=96, height=96, p_empty=0.0, n_tattoos=1)
    return root


def test_segmenter_learns_on_a_tiny_set(export_dir):
    steps = []
    with open_export(export_dir) as data:
        result = train_model(data, TrainOptions(kind="segmenter", epochs=10, input_size=64, batch_size=8, lr=1e-2,
                                                decoder_channels=TINY_DECODER, device="cpu"),
                             progress=lambda done, total, message: steps.append((done, total)))
    history = result.metrics["history"]
    assert len(history) == 10 and steps[-1][0] == steps[-1][1]
    assert np.mean([h["train_loss"] for h in history[-3:]]) < history[0]["train_loss"] * 0.75
    val = result.metrics["val"]
    # an all-background prediction has IoU 0 and Dice 0
    assert val["iou"] > 0.2 and val["dice"] > 0.3
    assert result.metrics["best_epoch"] == max(history, key=lambda h: h["val_iou"])["epoch"]
    side = result.sidecar
    assert side["kind"] == "segmenter" and side["classes"] == ["tattoo"] and side["input_size"] == 64
    assert side["architecture"]["decoder_channels"] == TINY_DECODER
    assert side["export_id"] == "synthetic-5-24" and side["training"]["device"] == "cpu"


def test_classifier_reports_per_style_metrics(export_dir):
    with open_export(export_dir) as data:
        result = train_model(data, TrainOptions(kind="classifier", epochs=4, input_size=32, batch_size=8,
                                                device="cpu", classes=["tribal", "japanese", "fineline", "watercolor",
                                                                       "traditional", "trash_polka", "lettering"]))
    classes = result.sidecar["classes"]
    assert "lettering" not in classes and len(classes) >= 2  # only styles with training crops
    history = result.metrics["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    val = result.metrics["val"]
    assert set(val["per_style"]) == set(classes)
    matrix = np.array(val["confusion"]["matrix"])
    assert matrix.shape == (len(classes), len(classes)) and matrix.sum() == val["samples"] > 0
    assert val["accuracy"] == pytest.approx(np.trace(matrix) / matrix.sum(), abs=1e-4)
    assert result.sidecar["training"]["crop_margin"] == 0.1


def test_export_without_what_training_needs(tmp_path, export_dir):
    (tmp_path / "images" / "train").mkdir(parents=True)
    with open_export(tmp_path) as data, pytest.raises(ExportError, match="masks"):
        train_model(data, TrainOptions(kind="segmenter", epochs=1, input_size=64, device="cpu"))
    with open_export(tmp_path) as data, pytest.raises(ExportError, match="crops"):
        train_model(data, TrainOptions(kind="classifier", epochs=1, input_size=32, device="cpu"))
    with open_export(export_dir) as data, pytest.raises(ExportError, match="at least two"):
        train_model(data, TrainOptions(kind="classifier", epochs=1, input_size=32, device="cpu", classes=["tribal"]))
    with pytest.raises(ValueError, match="multiple of 32"):
        TrainOptions(kind="segmenter", input_size=100).resolved()


def test_export_zip_is_read_and_unsafe_zips_refused(tmp_path, export_dir):
    import shutil
    import zipfile

    archive = shutil.make_archive(str(tmp_path / "export"), "zip", export_dir)
    with open_export(archive) as data:
        assert data.export_id == "synthetic-5-24"
        assert len(data.segmentation_samples("train")) + len(data.segmentation_samples("val")) == 24
        root = data.root
    assert not root.exists()  # the temporary extraction is gone afterwards
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../escape.txt", "x")
    with pytest.raises(ExportError, match="unsafe"), open_export(evil):
        pass
    assert not (tmp_path / "escape.txt").exists()


def test_device_falls_back_to_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert devmod.resolve_device("auto").type == "cpu"
    with pytest.warns(RuntimeWarning, match="CUDA is not available"):
        assert devmod.resolve_device("cuda").type == "cpu"
    with pytest.warns(RuntimeWarning):
        assert devmod.resolve_device("cuda:1").type == "cpu"
    with pytest.raises(ValueError, match="unknown device"):
        devmod.resolve_device("tpu")
    conv = devmod.prepare_model(torch.nn.Conv2d(3, 4, 3), torch.device("cpu"))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)  # NHWC convolutions are faster here too
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with devmod.autocast(torch.device("cpu")):  # a no-op on the CPU
            assert torch.ones(1).dtype == torch.float32


def test_training_asked_for_cuda_runs_on_cpu(monkeypatch, export_dir):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with open_export(export_dir) as data, pytest.warns(RuntimeWarning, match="CUDA"):
        result = train_model(data, TrainOptions(kind="classifier", epochs=1, input_size=32, batch_size=16,
                                                device="cuda"))
    assert result.metrics["device"] == "cpu"


class _FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_schedule_is_one_cycle_over_the_steps_without_a_time_limit():
    from backend.ml.train import _schedule

    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = _schedule(opt, 1e-2, 100)
    rates = [opt.param_groups[0]["lr"]]
    for _ in range(99):
        opt.step()
        schedule.step()
        rates.append(opt.param_groups[0]["lr"])
    assert rates[0] == pytest.approx(1e-3)  # lr / 10
    assert max(rates) == pytest.approx(1e-2) and 13 <= int(np.argmax(rates)) <= 15  # the peak at 15 % of the steps
    assert rates[-1] == pytest.approx(1e-5)  # lr / 1000: annealed
    assert all(a >= b for a, b in zip(rates[15:], rates[16:]))
    assert schedule.progress == pytest.approx(0.99) and not schedule.out_of_time


def test_schedule_anneals_by_the_time_limit_however_few_steps_ran():
    """A run its time budget stops part-way (say 11 of 30 planned epochs) ends annealed, not at the peak rate."""
    from backend.ml.train import BudgetSchedule

    clock = _FakeClock()
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = BudgetSchedule(opt, 1e-2, 3000, 100.0, clock=clock)
    for second in range(1, 101):
        clock.now = float(second)
        schedule.step()  # one step a second: a thirtieth of the planned steps fit in the budget
        if second == 50:
            assert schedule.progress == pytest.approx(0.5) and not schedule.out_of_time
        if second == 15:  # the peak: the highest rate, the lowest momentum
            assert opt.param_groups[0]["lr"] == pytest.approx(1e-2) and opt.param_groups[0]["betas"][0] == 0.85
    assert schedule.out_of_time and schedule.progress == 1.0
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-5) and opt.param_groups[0]["betas"][0] == 0.95


def test_time_limited_training_stops_within_its_budget(export_dir):
    with open_export(export_dir) as data:
        result = train_model(data, TrainOptions(kind="segmenter", epochs=1000, input_size=64, batch_size=8, lr=1e-2,
                                                decoder_channels=TINY_DECODER, device="cpu", time_limit=3.0))
    history = result.metrics["history"]
    assert len(history) < 1000 and "time limit" in result.sidecar["training"]["stopped"]
    assert history[-1]["seconds"] < 3.0 + 10  # the budget, plus the last validation pass


@pytest.mark.parametrize("time_limit", [None, 100.0])
def test_a_pretrained_part_learns_at_a_tenth_of_the_rate(time_limit):
    from backend.ml.train import PRETRAINED_LR_SCALE, _optimizer, _schedule

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))  # [0]: "pretrained", [1]: new
    opt = _optimizer(model, model[0], TrainOptions(kind="segmenter", lr=1e-2))
    old, new = opt.param_groups
    assert {id(p) for p in old["params"]} == {id(p) for p in model[0].parameters()}
    assert len(old["params"]) + len(new["params"]) == len(list(model.parameters()))
    schedule = _schedule(opt, 1e-2, 100, time_limit)
    for _ in range(40):
        opt.step()
        schedule.step()
        assert old["lr"] == pytest.approx(new["lr"] * PRETRAINED_LR_SCALE)
    assert new["lr"] > 1e-3  # past the peak, on the way down: the new layers at the full rate
    assert len(_optimizer(model, None, TrainOptions(kind="segmenter", lr=1e-2)).param_groups) == 1
