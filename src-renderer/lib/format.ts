// Number formatting used on every screen, so the same quantity always reads the same way.

export function bytes(n: number): string {
  if (!Number.isFinite(n)) return "–";
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${units[i]}`;
}

/** 1234567 -> "1,234,567" (fixed locale so tests and screenshots agree). */
export function count(n: number): string {
  return n.toLocaleString("en-US");
}

/** A percentage given in percent already: 91.234 -> "91.23%". */
export function percent(p: number | null | undefined, digits = 2): string {
  return p === null || p === undefined || !Number.isFinite(p) ? "–" : `${p.toFixed(digits)}%`;
}

/** A fraction 0..1 as a percentage. */
export function fraction(f: number | null | undefined, digits = 1): string {
  return f === null || f === undefined || !Number.isFinite(f) ? "–" : `${(f * 100).toFixed(digits)}%`;
}

export function interval(iv: [number, number] | null | undefined): string {
  return iv ? `${iv[0].toFixed(1)}–${iv[1].toFixed(1)}%` : "–";
}

/** Signed difference in points: +0.42 / −1.30. */
export function points(d: number | null | undefined): string {
  if (d === null || d === undefined || !Number.isFinite(d)) return "–";
  const s = Math.abs(d).toFixed(2);
  return d > 0 ? `+${s}` : d < 0 ? `−${s}` : "0.00";
}

export function decibels(db: number | null | undefined): string {
  return db === null || db === undefined || !Number.isFinite(db) ? "–" : `${db.toFixed(1)} dB`;
}

export function duration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return "estimating…";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function shape(dims: (number | string)[]): string {
  return dims.length === 0 ? "scalar" : dims.map((d) => (typeof d === "number" && d < 0 ? "?" : String(d))).join(" × ");
}

/** "4.20× smaller", or "1.67× larger" for a model that grew (a tiny one: the quantization parameters outweigh the weights). */
export function sizeChange(fp32Bytes: number, bytes: number): string {
  return bytes <= fp32Bytes ? `${ratio(fp32Bytes / bytes)} smaller` : `${ratio(bytes / fp32Bytes)} larger`;
}

export function ratio(r: number): string {
  return Number.isFinite(r) && r > 0 ? `${r.toFixed(r >= 10 ? 1 : 2)}×` : "–";
}

/** Last path component, for compact display of long paths (either separator). */
export function basename(p: string): string {
  const parts = p.split(/[\\/]/).filter(Boolean);
  return parts[parts.length - 1] ?? p;
}

export function dirname(p: string): string {
  const i = Math.max(p.lastIndexOf("/"), p.lastIndexOf("\\"));
  return i <= 0 ? p.slice(0, i + 1) || p : p.slice(0, i);
}

/** The path separator a path uses (the host's, not the browser's). */
export function sep(p: string): string {
  return p.includes("\\") && !p.includes("/") ? "\\" : "/";
}

/** An axis tick: whole counts with thousands separators, large ones abbreviated (3.85M), fractions to 3 digits. */
export function tick(v: number): string {
  if (!Number.isFinite(v)) return "";
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toPrecision(3)}k`;
  if (a >= 100 || Number.isInteger(v)) return Math.round(v).toLocaleString("en-US");
  return String(+v.toPrecision(3));
}
