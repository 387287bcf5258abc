"""Issue 19, the editor's structure and keyboard: tools come from one registry (tool bar, key map and the
shortcut sheet agree with it), the active tool answers keys first (Ctrl+Z while drawing removes the last vertex,
not the previous region), view state (hidden styles, labels, photo filter) lives beside the document store."""
from __future__ import annotations

import pytest

from .conftest import screenshot
from ..support.browser import click_image, draw_polygon, open_new_image, store_regions

pytestmark = pytest.mark.e2e


def draft_points(page) -> int:
    return page.evaluate("() => window.inklabel.editor.tools.polygon.points.length")


def test_ctrl_z_while_drawing_removes_the_last_vertex_not_the_previous_region(page, live):
    image_id = open_new_image(page, live, width=800, height=600)
    draw_polygon(page, [(100, 100), (300, 100), (300, 300)])
    assert len(store_regions(page)) == 1
    page.keyboard.press("p")
    for x, y in [(400, 100), (600, 100), (600, 300)]:
        click_image(page, x, y)
    assert draft_points(page) == 3
    page.keyboard.press("Control+z")
    assert draft_points(page) == 2
    assert len(store_regions(page)) == 1, "Ctrl+Z while drawing must not undo the finished region"
    page.keyboard.press("Control+Shift+z")  # puts the vertex back
    assert draft_points(page) == 3
    screenshot(page, "i19-ctrl-z-drawing")
    for _ in range(3):
        page.keyboard.press("Control+z")
    assert draft_points(page) == 0
    assert len(store_regions(page)) == 1
    page.keyboard.press("Control+z")  # nothing is being drawn: now undo reaches the document
    assert len(store_regions(page)) == 0
    assert not page.js_errors, page.js_errors


def test_toolbar_keys_and_sheet_come_from_one_registry(page, live):
    image_id = open_new_image(page, live, width=640, height=480)
    registry = page.evaluate("""async () => {
        const m = await import('/src/editor/tools/registry.js');
        return m.TOOL_REGISTRY.map((t) => ({name: t.name, key: t.key, label: t.label}));
    }""")
    assert [t["name"] for t in registry][:3] == ["select", "polygon", "hole"]
    buttons = page.eval_on_selector_all(".toolbar button.tool", "els => els.map(e => e.dataset.tool)")
    assert buttons == [t["name"] for t in registry]
    for t in registry:
        if len(t["key"]) == 1:
            page.keyboard.press(t["key"].lower())
            assert page.evaluate("window.inklabel.editor.toolName") == t["name"]
    page.keyboard.press("Escape")
    page.keyboard.press("?")
    sheet = page.locator("dialog.shortcut-sheet")
    sheet.wait_for()
    text = sheet.inner_text()
    for t in registry:
        assert t["key"] in text
    screenshot(page, "i19-shortcut-sheet")
    page.keyboard.press("Escape")


def test_view_state_hides_styles_and_shows_labels_without_touching_the_document(page, live):
    image_id = open_new_image(page, live, width=640, height=480)
    page.evaluate("""() => {
        const s = window.inklabel.store;
        s.create({geometry: {type: 'Polygon', coordinates: [[[10,10],[100,10],[100,100],[10,10]]]}, style: 'tribal', motifs: [], source: 'human'});
        s.create({geometry: {type: 'Polygon', coordinates: [[[200,200],[300,200],[300,300],[200,200]]]}, style: 'japanese', motifs: [], source: 'human'});
    }""")
    revision = page.evaluate("window.inklabel.store.revision")
    page.evaluate("() => window.inklabel.view.setStyleHidden('tribal', true)")
    assert page.locator("g.region.hidden").count() == 1
    page.evaluate("() => window.inklabel.view.setOption('labels', true)")
    assert page.locator(".overlay text, .overlay .label").count() >= 2 or page.locator(".overlay-svg text").count() >= 1
    assert page.evaluate("window.inklabel.store.revision") == revision
    assert not page.js_errors, page.js_errors


def test_every_style_is_drawn_with_its_colour_over_a_dark_outline_halo(page, live):
    image_id = open_new_image(page, live, width=900, height=600)
    styles = page.evaluate("""async () => {
        const t = await (await fetch('/api/v1/taxonomy')).json();
        const s = window.inklabel.store;
        t.styles.forEach((st, i) => {
            const x = 40 + (i % 7) * 120, y = 120 + Math.floor(i / 7) * 200;
            s.create({geometry: {type: 'Polygon', coordinates: [[[x, y], [x + 90, y], [x + 90, y + 150], [x, y + 150], [x, y]]]},
                      style: st.key, motifs: [], source: 'human'});
        });
        return t.styles.map((st) => st.color);
    }""")
    drawn = page.evaluate("""() => [...document.querySelectorAll('g.region')].map((g) => ({
        casing: getComputedStyle(g.querySelector('path.casing')).stroke,
        casingWidth: parseFloat(getComputedStyle(g.querySelector('path.casing')).strokeWidth),
        shapeWidth: parseFloat(getComputedStyle(g.querySelector('path.shape')).strokeWidth),
        colour: g.querySelector('path.shape').style.getPropertyValue('--c')}))""")
    assert len(drawn) == len(styles)
    assert [d["colour"] for d in drawn] == styles
    assert len(set(styles)) == len(styles)
    for d in drawn:
        assert d["casing"] == "rgba(0, 0, 0, 0.7)" and d["casingWidth"] > d["shapeWidth"]
    screenshot(page, "i19-palette-halo")
