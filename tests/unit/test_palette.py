"""Issue 19 item 5: the style colours of the taxonomy (and the colour of regions without a style) are distinct from
each other and visible on skin and on black ink, with the dark outline halo the editor draws under each region's
edge (frontend/app.css `.region .casing`)."""
import itertools
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BACKGROUNDS = {"pale skin": "#f1d3bc", "medium skin": "#c08a64", "dark skin": "#5c3a21", "black ink": "#141414"}
MIN_CONTRAST = 3.0  # WCAG's figure for graphical objects
MIN_DELTA_E = 20.0  # CIE76 in Lab: clearly different at a glance, not just side by side


def _rgb(hex_colour: str) -> list[float]:
    h = hex_colour.lstrip("#")
    return [int(h[i:i + 2], 16) / 255 for i in (0, 2, 4)]


def _linear(c: float) -> float:
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def _luminance(rgb) -> float:
    r, g, b = (_linear(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a, b) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _lab(rgb):
    r, g, b = (_linear(c) for c in rgb)
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883
    f = lambda t: t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116  # noqa: E731
    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def _delta_e(a, b) -> float:
    return sum((p - q) ** 2 for p, q in zip(_lab(a), _lab(b))) ** 0.5


def _palette() -> dict[str, str]:
    taxonomy = json.loads((ROOT / "annotations" / "taxonomy.json").read_text())
    colours = {s["key"]: s["color"] for s in taxonomy["styles"]}
    js = (ROOT / "frontend" / "src" / "taxonomy.js").read_text()
    colours["(no style)"] = re.search(r'UNSTYLED_COLOR = "(#[0-9a-fA-F]{6})"', js).group(1)
    return colours


def _casing_alpha() -> float:
    css = (ROOT / "frontend" / "app.css").read_text()
    rule = re.search(r"\.region \.casing \{[^}]*stroke: rgba\(0, 0, 0, ([0-9.]+)\)", css)
    assert rule, "the outline halo (.region .casing) is missing from app.css"
    return float(rule.group(1))


PALETTE = _palette()


@pytest.mark.parametrize("a,b", itertools.combinations(sorted(PALETTE), 2))
def test_style_colours_are_distinct(a, b):
    d = _delta_e(_rgb(PALETTE[a]), _rgb(PALETTE[b]))
    assert d >= MIN_DELTA_E, f"{a} {PALETTE[a]} and {b} {PALETTE[b]} are too alike (ΔE {d:.1f})"


@pytest.mark.parametrize("background", sorted(BACKGROUNDS))
@pytest.mark.parametrize("style", sorted(PALETTE))
def test_outline_is_visible_on_skin_and_ink(style, background):
    colour, bg = _rgb(PALETTE[style]), _rgb(BACKGROUNDS[background])
    alpha = _casing_alpha()
    halo = [alpha * 0 + (1 - alpha) * c for c in bg]  # the dark casing over this background
    # the outline stands out from the background, by its colour or by its halo …
    assert max(_contrast(colour, bg), _contrast(halo, bg)) >= MIN_CONTRAST, (style, background)
    # … and the coloured edge stands out from its own halo, so the style stays readable
    assert _contrast(colour, halo) >= MIN_CONTRAST, (style, background)
