// Chart colours come from the same CSS variables as the rest of the UI, read when a chart is drawn.
export function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

export function seriesColor(i: number): string {
  return cssVar(`--chart-${(i % 5) + 1}`);
}
