// A value printed at the end of every bar: a bar of 0.4% is a pixel wide, its number is not.
import type { Chart, Plugin } from "chart.js";
import { cssVar } from "./theme.svelte.ts";

export function barValues(format: (v: number) => string): Plugin<"bar"> {
  return {
    id: "barValues",
    afterDatasetsDraw(chart: Chart<"bar">) {
      const { ctx } = chart;
      const horizontal = chart.options.indexAxis === "y";
      ctx.save();
      ctx.fillStyle = cssVar("--text");
      ctx.font = `600 11px ${cssVar("--font")}`;
      chart.data.datasets.forEach((ds, i) => {
        const meta = chart.getDatasetMeta(i);
        if (meta.type !== "bar" || meta.hidden) return;
        meta.data.forEach((bar, j) => {
          const v = ds.data[j];
          if (typeof v !== "number") return;
          const { x, y } = bar.getProps(["x", "y"], true) as { x: number; y: number };
          if (horizontal) {
            ctx.textAlign = "left";
            ctx.textBaseline = "middle";
            ctx.fillText(format(v), x + 4, y);
          } else {
            ctx.textAlign = "center";
            ctx.textBaseline = "bottom";
            ctx.fillText(format(v), x, y - 2);
          }
        });
      });
      ctx.restore();
    },
  };
}
