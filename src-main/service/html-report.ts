// A report that opens anywhere: one HTML file, inline styles, no scripts, nothing fetched.
import type { Accuracy, QuantReport } from "../../shared/types.ts";

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const num = (v: number | null | undefined, d = 2): string => (v === null || v === undefined ? "–" : v.toFixed(d));

function acc(a: Accuracy | null): string {
  if (!a || a.top1 === null) return "–";
  const [lo, hi] = a.top1Interval!;
  return `${num(a.top1)} <small>(${num(lo, 1)}–${num(hi, 1)})</small>`;
}

function kib(n: number): string {
  return n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

export function renderHtmlReport(r: QuantReport): string {
  const c = r.config;
  const rows = r.layers
    .map(
      (l) => `<tr><td>${esc(l.name)}</td><td>${l.precision}</td><td class=n>${num(l.weightBits)}</td><td class=n>${l.activationBits === null ? "–" : num(l.activationBits)}</td>
<td>${l.activationGranularity}${l.halfRange ? " · non-negative" : ""}</td><td class=n>${num(l.rangeKept)}</td><td class=n>${l.fractionClipped === null ? "–" : num(100 * l.fractionClipped, 3)}</td>
<td class=n>${l.biasShift === null ? "–" : num(l.biasShift, 4)}</td><td class=n>${num(l.sqnrDb, 1)}</td><td title="${esc(l.executableWhy)}">${l.executable}</td><td>${l.noEffect.join(", ") || ""}</td></tr>`,
    )
    .join("\n");
  const hashes = [
    ["Model", r.model.path, r.model.sha256],
    ["Calibration images", `${r.calibration.dir} (${r.calibration.images})`, r.calibration.sha256],
    ...(r.evaluation ? [["Evaluation images", `${r.evaluation.dir} (${r.evaluation.images})`, r.evaluation.sha256]] : []),
    ...(r.output ? [["Quantized model", r.output.path, r.output.sha256]] : []),
  ]
    .map(([k, p, h]) => `<tr><th>${k}</th><td>${esc(p)}</td><td><code>${h}</code></td></tr>`)
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Nibble report: W${c.wBits}A${c.aBits}</title>
<style>
:root{color-scheme:light dark;--line:#8884;font:14px/1.45 system-ui,sans-serif}
body{max-width:1100px;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}
th,td{padding:.3rem .6rem;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
code{font-size:12px;word-break:break-all}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(180px,1fr));gap:1rem}
.card{border:1px solid var(--line);border-radius:8px;padding:.8rem}
.card b{display:block;font-size:1.4rem}
</style></head><body>
<h1>Nibble report</h1>
<p>W${c.wBits}A${c.aBits} · methods: ${c.methods.length ? esc(c.methods.join(", ")) : "none (per-channel min/max baseline)"} · ${c.activations} activations · first/last layer at 8 bits: ${c.keepFirstLast8 ? "yes" : "no"} · created ${esc(r.createdAt)} by Nibble ${r.tool.version}</p>
<div class=cards>
<div class=card>FP32 top-1 %<b>${acc(r.fp32)}</b></div>
<div class=card>Quantized top-1 %<b>${acc(r.quantized)}</b></div>
<div class=card>Agreement with FP32<b>${r.agreement ? `${num(r.agreement.agreement)} %` : "–"}</b>${r.agreement ? `${r.agreement.flipped} predictions flipped` : ""}</div>
<div class=card>Size on disk<b>${kib(r.size.quantBytes)}</b>from ${kib(r.size.fp32Bytes)} (${num(r.size.ratio)}×)</div>
</div>
<h2>Layers</h2>
<table><thead><tr><th>Layer</th><th>Precision</th><th>W bits</th><th>A bits</th><th>Activations</th><th>Range kept</th><th>Clipped %</th><th>Bias shift</th><th>SQNR dB</th><th>Runs as</th><th>No effect</th></tr></thead>
<tbody>${rows}</tbody></table>
<h2>Inputs and outputs</h2>
<table>${hashes}</table>
${r.warnings.length ? `<h2>Notes</h2><ul>${r.warnings.map((w) => `<li>${esc(w)}</li>`).join("")}</ul>` : ""}
</body></html>
`;
}
