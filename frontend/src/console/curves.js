// Training curves from a model's per-epoch history ([{epoch, train_loss, val_iou, ...}]): the loss on the left
// axis, the validation metrics (0–1) on the right. Used live while a model trains and on a finished model.

import { lineChart } from "./charts.js";

const LABELS = { train_loss: "train loss", val_iou: "val IoU", val_dice: "val Dice", val_accuracy: "val accuracy", val_macro_f1: "val macro F1" };

export function curveSeries(history) {
  const keys = [];
  for (const entry of history) for (const k of Object.keys(entry)) if (!keys.includes(k) && k !== "epoch" && k !== "seconds") keys.push(k);
  keys.sort((a, b) => (a === "train_loss" ? -1 : b === "train_loss" ? 1 : a.localeCompare(b)));
  return {
    x: history.map((e) => e.epoch),
    series: keys.map((k) => ({
      key: k,
      label: LABELS[k] || k.replace(/_/g, " "),
      axis: k.includes("loss") ? "left" : "right",
      dash: k.includes("loss") ? undefined : [6, 3],
      values: history.map((e) => (typeof e[k] === "number" ? e[k] : null)),
    })),
  };
}

/** A chart that can be fed a growing history; it is (re)built when the set of series changes. */
export function trainingCurve(host, { testid = "training-curve" } = {}) {
  let chart = null;
  let keys = "";
  return {
    update(history) {
      const { x, series } = curveSeries(history || []);
      const k = series.map((s) => s.key).join(",");
      if (!chart || k !== keys) {
        if (chart) chart.destroy();
        keys = k;
        chart = lineChart({ x, series, height: 260, xLabel: "epoch", leftLabel: "loss", rightLabel: "validation", testid, rightRange: [0, 1], integerX: true });
        host.replaceChildren(chart.el);
      } else {
        chart.update(x, series);
      }
      host.dataset.epochs = String(x.length);
    },
    destroy() {
      if (chart) chart.destroy();
      chart = null;
    },
  };
}
