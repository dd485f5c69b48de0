// Plain-text rendering of reports for the terminal: aligned tables, no JSON.
import type { Accuracy, QuantReport } from "../../shared/types.ts";

export function table(header: string[], rows: (string | number)[][], alignRight: boolean[] = []): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => (alignRight[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ").trimEnd();
  return [line(cells[0]), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)].join("\n");
}

export function pct(v: number | null | undefined, digits = 2): string {
  return v === null || v === undefined ? "-" : v.toFixed(digits);
}

export function accuracyCell(a: Accuracy | null): string {
  if (!a || a.top1 === null) return "-";
  const [lo, hi] = a.top1Interval!;
  return `${a.top1.toFixed(2)} (${lo.toFixed(1)}-${hi.toFixed(1)})`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

export function formatReport(r: QuantReport): string {
  const c = r.config;
  const out: string[] = [];
  out.push(`Nibble: W${c.wBits}A${c.aBits}, methods: ${c.methods.length ? c.methods.join(", ") : "none (per-channel min/max baseline)"}`);
  out.push(`Calibration: ${r.calibration.images} images from ${r.calibration.dir}${r.calibration.skipped.length ? ` (${r.calibration.skipped.length} skipped)` : ""}`);
  out.push("");
  const rows: (string | number)[][] = [
    ["top-1 % (95% interval)", accuracyCell(r.fp32), accuracyCell(r.quantized)],
    ["top-5 %", pct(r.fp32?.top5), pct(r.quantized?.top5)],
    ["file size", bytes(r.size.fp32Bytes), bytes(r.size.quantBytes)],
  ];
  if (r.agreement) rows.push(["agreement with FP32 %", "", `${r.agreement.agreement.toFixed(2)} (${r.agreement.flipped} flipped)`]);
  if (r.evaluation && r.evaluation.measured !== false) out.push(`Evaluation: ${r.evaluation.images} samples from ${r.evaluation.dir}`);
  else out.push(`Evaluation: not measured (${r.evaluation ? "no sample left that calibration did not use" : "no evaluation folder given"})`);
  const ranked = r.fp32?.top1 !== null && r.fp32?.top1 !== undefined;
  out.push(table(["", "FP32", "quantized"], ranked ? rows : rows.filter((row) => row[0] === "file size"), [false, true, true]));
  if (r.outputs?.length) {
    out.push("", "Outputs against FP32 (higher SQNR and cosine are closer; error in the output's own units):");
    out.push(
      table(
        ["output", "shape", "SQNR dB", "cosine (worst)", "max |error|", "FP32 max |x|"],
        r.outputs.map((o) => [
          o.output,
          `[${o.shape.join(", ")}]`,
          o.identical ? "identical" : pct(o.sqnrDb, 1),
          o.cosine === null ? "-" : `${o.cosine.toFixed(4)} (${o.worstCosine!.toFixed(4)})`,
          o.maxAbsError.toPrecision(3),
          o.referenceMaxAbs.toPrecision(3),
        ]),
        [false, false, true, true, true, true],
      ),
    );
  }
  const d = r.detection;
  if (d) {
    out.push(
      `Detections (${d.scores} + ${d.boxes}, score > ${d.scoreThreshold}, NMS ${d.nmsIou}, match IoU ${d.matchIou}): ` +
        (d.keptPercent === null
          ? `FP32 finds none on the ${d.samples} evaluation samples, so nothing to keep.`
          : `the quantized model keeps ${d.kept} of FP32's ${d.fp32Detections} (${d.keptPercent.toFixed(1)}%), with ${d.extra} extra.`),
    );
  }
  out.push(`Compression: ${r.size.ratio.toFixed(2)}x on disk; weights need ${bytes(r.size.theoreticalBytes)} at their allocated bits.`);
  out.push("");
  out.push(
    table(
      ["layer", "precision", "W bits", "A bits", "act", "kept", "clipped %", "SQNR dB", "runs as"],
      r.layers.map((l) => [
        l.name,
        l.precision,
        l.weightBits.toFixed(2),
        l.activationBits === null ? "-" : l.activationBits.toFixed(2),
        l.activationGranularity === "none" ? "-" : `${l.activationGranularity}${l.halfRange ? ", relu" : ""}`,
        l.rangeKept === null ? "-" : l.rangeKept.toFixed(2),
        l.fractionClipped === null ? "-" : (100 * l.fractionClipped).toFixed(3),
        l.sqnrDb === null ? "-" : l.sqnrDb.toFixed(1),
        l.runsAs ? `${l.executable} (${l.runsAs})` : l.executable,
      ]),
      [false, false, true, true, false, true, true, true, false],
    ),
  );
  const tg = r.target;
  if (tg) {
    out.push("", `Target: ${tg.id}`);
    for (const n of tg.notes) out.push(`  ${n}`);
    const rt = tg.runtime;
    if (rt) {
      const fused = Object.entries(rt.ops).filter(([op]) => op.startsWith("Q") && op !== "QuantizeLinear").map(([op, n]) => `${n} ${op}`);
      out.push(`  ${rt.runtime}: ${rt.integerOps} integer kernels${fused.length ? ` (${fused.join(", ")})` : ""}, ${rt.floatConvs} float Conv/Gemm/MatMul left.`);
    }
    if (tg.selfCheck) out.push(`  Self-check: ${tg.selfCheck.message}`);
    const lat = tg.latency;
    if (lat && lat.rows.length) {
      out.push(`  Time per image on ${lat.machine}:`);
      for (const row of lat.rows) out.push(`    batch ${row.batch}: FP32 ${row.fp32Ms.toFixed(3)} ms, exported ${row.quantizedMs.toFixed(3)} ms (${row.ratio.toFixed(2)}x)`);
    }
  }
  const rec = r.reconstruction;
  if (rec) {
    const nearest = rec.layers.reduce((a, l) => a + l.errorNearest, 0);
    const chosen = rec.layers.reduce((a, l) => a + l.errorChosen, 0);
    out.push(
      "",
      `Reconstruction: ${rec.layers.length} layers on ${rec.images} calibration images in ${(rec.passSeconds + rec.solveSeconds).toFixed(1)} s; ` +
        `output error ${nearest > 0 ? ((100 * chosen) / nearest).toFixed(1) : "-"}% of nearest rounding's.`,
    );
  }
  const mp = r.mixedPrecision;
  if (mp) {
    out.push("", `Mixed precision (--max-drop ${mp.maxDrop}): ${mp.summary}`);
    out.push(
      table(
        ["layers at 8 bits", "avg W bits", "size", mp.metric === "top1" ? "top-1 drop ± 1 s.e." : "agreement drop ± 1 s.e.", "meets"],
        mp.candidates.map((x, i) => [`${x.layers8}${i === mp.chosen ? " (chosen)" : ""}`, x.averageBits.toFixed(2), bytes(x.bytes), `${x.drop.toFixed(2)} ± ${x.margin.toFixed(2)}`, x.meets ? "yes" : "no"]),
        [false, true, true, true, false],
      ),
    );
  }
  const idle = r.layers.filter((l) => l.noEffect.length);
  if (idle.length) out.push("", `Methods that changed nothing: ${idle.map((l) => `${l.name} (${l.noEffect.join(", ")})`).join("; ")}`);
  for (const w of r.warnings) out.push(`Note: ${w}`);
  return out.join("\n");
}
