// Why the queue chose an image, in words an annotator reads (issue 19 item 11): the score's parts
// ("roi_entropy 0.71, uncertain_share 0.55") stay in the tooltip for whoever wants them.

const LEVEL = (v) => (v >= 0.66 ? "very unsure" : v >= 0.33 ? "unsure" : "fairly sure");

export function plainReason(item) {
  if (!item) return "";
  if (item.kind === "rework") return item.comment ? `Sent back in review: ${item.comment}` : "Sent back in review: please fix it.";
  if (item.kind === "agreement") return "A second, independent annotation: label it as you would any image.";
  const parts = item.parts || {};
  const num = (k) => (typeof parts[k] === "number" && Number.isFinite(parts[k]) ? parts[k] : null);
  const outline = num("segmentation") ?? num("roi_entropy");
  const style = num("classification") ?? num("uncertain_share");
  if (item.strategy === "uncertainty" || item.strategy === "diversity") {
    const bits = [];
    if (outline !== null) bits.push(`${LEVEL(outline)} where the tattoo is`);
    if (style !== null) bits.push(`${LEVEL(style)} about its style`);
    if (bits.length) return `Your labels help most here: the model is ${bits.join(" and ")}.`;
  }
  if (item.strategy === "oldest") return "The image that has waited longest.";
  if (item.strategy === "random") return "Picked at random from the images waiting.";
  return item.reason || "";
}
