"""Export options: the body of `POST /api/v1/exports`, the CLI's flags and `create_export(options)` all go
through this one model, so every entry point accepts and refuses the same things."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from backend.db.models import IMAGE_STATUSES
from backend.datasets.splits import DEFAULT_MAX_DISTANCE

FORMATS = ("coco", "masks", "crops", "yolo", "labelme", "cvat", "labelstudio")
Format = Literal["coco", "masks", "crops", "yolo", "labelme", "cvat", "labelstudio"]
TaxonomyKey = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="a style or flag key")]
Status = Literal["new", "in_progress", "submitted", "accepted", "rejected"]
assert set(Status.__args__) == set(IMAGE_STATUSES)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class SplitOptions(_Strict):
    val: float = Field(0.1, ge=0, lt=1, description="share of near-duplicate groups in the validation split")
    test: float = Field(0.1, ge=0, lt=1, description="share in the test split")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="same seed, same data: same splits")
    near_duplicate_distance: int = Field(
        DEFAULT_MAX_DISTANCE, ge=0, le=32,
        description="images whose 64-bit perceptual hashes differ in at most this many bits stay in one split",
    )

    @model_validator(mode="after")
    def _room_for_train(self):
        if self.val + self.test >= 1:
            raise ValueError("val + test must be below 1 (something has to be left to train on)")
        return self


class FilterOptions(_Strict):
    status: list[Status] = Field(default_factory=lambda: ["accepted"], min_length=1,
                                 description="image statuses to export (default: accepted only)")
    styles: list[TaxonomyKey] = Field(default_factory=list, max_length=64,
                              description="only images tagged with any of these style keys (image or region); "
                                          "empty: all")
    flags: list[TaxonomyKey] = Field(default_factory=list, max_length=64,
                             description="only images with any of these flags (flags excluded from training put "
                                         "them in the 'excluded' split, see include_excluded); empty: all")

    @field_validator("styles", "flags")
    @classmethod
    def _keys(cls, value: list[str]) -> list[str]:
        return sorted(set(value))

    @field_validator("status")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return [s for s in IMAGE_STATUSES if s in value]


class CropOptions(_Strict):
    margin: float = Field(0.1, ge=0, le=1, description="context around the region, as a share of its longer side")
    mask_background: bool = Field(False, description="paint pixels outside the region with the ImageNet mean colour")


class ExportOptions(_Strict):
    formats: list[Format] = Field(default_factory=lambda: list(FORMATS), min_length=1,
                                  description="any of coco, masks (semantic + instance), crops, yolo (YOLO-seg), "
                                              "labelme, cvat (CVAT for images 1.1 XML), labelstudio (Label Studio JSON)")
    categories: Literal["tattoo", "styles"] = Field(
        "tattoo",
        description="tattoo: one class (styles as COCO attributes); styles: class 0 'tattoo' (no or untrainable "
                    "style) plus one class per trainable style, the same in COCO categories, yolo/data.yaml names "
                    "and the class-index masks (masks_class/, legend in masks_class/legend.json)",
    )
    images: bool = Field(True, description="include images/{split}/<sha256>.jpg (COCO and LabelMe refer to them)")
    split: SplitOptions = Field(default_factory=SplitOptions)
    filter: FilterOptions = Field(default_factory=FilterOptions)
    crops: CropOptions = Field(default_factory=CropOptions)
    include_excluded: bool = Field(
        False,
        description="also write images flagged out of training (not a tattoo, bad example, ...) to a separate "
                    "'excluded' split (images/excluded, coco/excluded.json, masks, labelme) for backups and round trips",
    )

    @field_validator("formats")
    @classmethod
    def _canonical(cls, value: list[str]) -> list[str]:
        return [f for f in FORMATS if f in value]


def parse_split_spec(text: str) -> dict:
    """The CLI's `--split val=0.1,test=0.1,seed=0[,distance=8]` as a dict for SplitOptions."""
    out: dict = {}
    names = {"val": "val", "test": "test", "seed": "seed", "distance": "near_duplicate_distance",
             "near_duplicate_distance": "near_duplicate_distance"}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in names:
            raise ValueError(f"--split takes val=F,test=F,seed=N,distance=N; not {part!r}")
        try:
            out[names[key]] = int(value) if names[key] in ("seed", "near_duplicate_distance") else float(value)
        except ValueError:
            raise ValueError(f"--split {key} needs a number, not {value!r}") from None
    return out
