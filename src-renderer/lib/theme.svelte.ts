// Chart colours come from the same CSS variables as the rest of the UI. Reading `scheme.dark` makes any
// chart configuration that asks for a colour rebuild when the system switches between light and dark.
const query = typeof matchMedia === "function" ? matchMedia("(prefers-color-scheme: dark)") : null;

export const scheme = $state({ dark: query?.matches ?? false });

query?.addEventListener("change", (e) => (scheme.dark = e.matches));

export function cssVar(name: string): string {
  void scheme.dark;
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

export function seriesColor(i: number): string {
  return cssVar(`--chart-${(i % 5) + 1}`);
}
