// The renderer's built files, as both hosts serve them (the loopback web host over HTTP, the Electron
// window over app://): one content policy, one MIME table, one rule for which files may be served.
import { realpath, stat } from "node:fs/promises";
import path from "node:path";

/** No inline script or style, no remote anything: the page talks only to the origin that served it. */
export const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

export const MIME: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".json": "application/json",
};

export function mimeOf(file: string): string {
  return MIME[path.extname(file).toLowerCase()] ?? "application/octet-stream";
}

/**
 * The real path of the asset a URL path names, or null. `root` must itself be a real path. Traversal is
 * refused rather than normalised (no legitimate asset URL contains it), and links out of root are not followed.
 */
export async function resolveAsset(root: string, urlPath: string): Promise<string | null> {
  let rel: string;
  try {
    rel = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (rel === "/") rel = "/index.html";
  if (rel.includes("\0") || rel.includes("\\") || rel.split("/").some((seg) => seg === ".." || seg === ".")) return null;
  const real = await realpath(path.join(root, rel)).catch(() => null);
  if (!real || !real.startsWith(root + path.sep)) return null;
  const st = await stat(real).catch(() => null);
  return st?.isFile() ? real : null;
}
