// A small line chart of recent CPU and memory use, drawn as SVG from samples the page
// collects while it is open (the API reports the latest usage, not a history).

import { h } from "./dom.js";

const WIDTH = 320;
const HEIGHT = 90;
const SERIES = [
  { key: "cpu", label: "CPU", className: "line-cpu" },
  { key: "memory", label: "Memory", className: "line-memory" },
];

function points(samples, key) {
  const step = samples.length > 1 ? WIDTH / (samples.length - 1) : 0;
  return samples
    .map((sample, index) => {
      const y = HEIGHT - (Math.min(100, Math.max(0, sample[key])) / 100) * HEIGHT;
      return `${(index * step).toFixed(1)},${y.toFixed(1)}`;
    })
    .join(" ");
}

export function usageChart(samples) {
  const last = samples.at(-1);
  const description = last
    ? `Recent usage, ${samples.length} samples: CPU now ${last.cpu.toFixed(0)}%, memory now ${last.memory.toFixed(0)}%.`
    : "No usage samples yet.";
  const svg = h(
    "svg:svg",
    {
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
      class: "chart",
      role: "img",
      "aria-label": description,
      preserveAspectRatio: "none",
    },
    [25, 50, 75].map((level) =>
      h("svg:line", {
        x1: 0,
        x2: WIDTH,
        y1: HEIGHT - (level / 100) * HEIGHT,
        y2: HEIGHT - (level / 100) * HEIGHT,
        class: "grid",
      }),
    ),
    samples.length > 1
      ? SERIES.map((series) =>
          h("svg:polyline", {
            points: points(samples, series.key),
            class: series.className,
            fill: "none",
          }),
        )
      : null,
  );
  return h(
    "figure",
    { class: "chart-figure" },
    svg,
    h(
      "figcaption",
      {},
      SERIES.map((series) => h("span", { class: `legend legend-${series.key}` }, series.label)),
      " — % of the plan, sampled while this page is open",
    ),
  );
}
