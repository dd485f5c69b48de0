// Deterministic ordering shared by the scanner and the hash. JavaScript's default string comparison
// orders UTF-16 code units, which sorts astral characters (emoji, rare CJK) before U+E000..U+FFFF;
// code-point order is what Python's sorted() uses, so class indices match torchvision's ImageFolder.
export function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done || y.done) return x.done === y.done ? 0 : x.done ? -1 : 1;
    const d = x.value.codePointAt(0)! - y.value.codePointAt(0)!;
    if (d !== 0) return d;
  }
}
