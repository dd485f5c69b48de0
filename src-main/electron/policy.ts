// The desktop shell's security decisions as plain functions, with no Electron import, so they are tested
// without an Electron binary (test/e2e/privacy.test.ts); main.ts only wires them to Electron's hooks.
// Which requests the page may make (none that leave the app), where the window may go (nowhere), the
// headers of every page it is served, which frames may call the main process, and which calls and paths
// the page may send (only paths the user chose in a dialog, a drop or the recent-models menu).
import { stat } from "node:fs/promises";
import type { ApiMethod } from "../../shared/ipc.ts";
import { absPath, apiArg, pathsOf, type ApiArg } from "../../shared/validate.ts";
import { CSP, mimeOf, resolveAsset } from "../host/assets.ts";
import type { UserPaths } from "./user-paths.ts";

export const APP_SCHEME = "app";
export const APP_ORIGIN = "app://nibble";

/** A URL of the app's own page and files: app://nibble/..., exactly that host, no user, password or port. */
export function isAppUrl(url: string): boolean {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  return u.protocol === `${APP_SCHEME}:` && u.host === "nibble" && u.username === "" && u.password === "";
}

/**
 * The session's request filter: the page may load its own files (app://nibble/) and inline data: images,
 * the developer tools their own files when they are enabled; every other request is cancelled, so nothing
 * the page does can reach the network or the disk (http, https, ws, wss, file, ftp, blob, other hosts).
 */
export function allowRequest(url: string, opts: { devtools: boolean }): boolean {
  if (isAppUrl(url)) return true;
  if (/^data:/i.test(url)) return true;
  return opts.devtools && url.startsWith("devtools://");
}

/** The window never leaves the app: every navigation the page starts is refused (a dropped file would open in it). */
export function allowNavigation(url: string): boolean {
  void url;
  return false;
}

/** No new windows, for any URL. */
export function windowOpenAction(url: string): { action: "deny" } {
  void url;
  return { action: "deny" };
}

/** Camera, microphone, notifications, geolocation, ...: the app needs none, so none is granted or reported. */
export function allowPermission(permission: string): boolean {
  void permission;
  return false;
}

/** Headers of every file served to the window: its type, the content policy (no remote anything), no sniffing. */
export function assetHeaders(file: string): Record<string, string> {
  return { "content-type": mimeOf(file), "content-security-policy": CSP, "x-content-type-options": "nosniff" };
}

/** The renderer file an app:// request names, or null: only app://nibble/ URLs, only files inside `rendererRoot` (a real path). */
export async function resolveAppRequest(rendererRoot: string, url: string): Promise<string | null> {
  if (!isAppUrl(url)) return null;
  return resolveAsset(rendererRoot, new URL(url).pathname);
}

/** Only the top frame of our own window, showing our own page, may call the main process. */
export function trustedSender(s: { ourWindow: boolean; topFrame: boolean; url: string | undefined }): boolean {
  return s.ourWindow && s.topFrame && s.url !== undefined && isAppUrl(s.url) && s.url.startsWith(`${APP_ORIGIN}/`);
}

/**
 * An engine call from the page, rebuilt from the raw payload (shared/validate.ts) and refused unless every
 * path it reads was chosen by the user and every path it writes was confirmed in a save dialog.
 */
export function authorizeCall<M extends ApiMethod>(paths: UserPaths, method: M, raw: unknown): ApiArg<M> {
  const arg = apiArg[method](raw);
  const { read, write } = pathsOf(method, arg);
  read.forEach((p) => paths.checkRead(p));
  write.forEach((p) => paths.checkWrite(p));
  return arg;
}

/**
 * A path the preload took from a real drop (webUtils.getPathForFile): accepted, and from then on readable,
 * only when it is a folder or an .onnx file that exists. Returns null otherwise.
 */
export async function acceptDrop(paths: UserPaths, raw: unknown): Promise<{ path: string; kind: "model" | "folder" } | null> {
  const p = absPath(raw, "dropped path");
  const st = await stat(p).catch(() => null);
  if (!st || !(st.isDirectory() || (st.isFile() && /\.onnx$/i.test(p)))) return null;
  paths.allowRead(p);
  return { path: p, kind: st.isFile() ? "model" : "folder" };
}

/** "Show in folder" only for a file the user saved through a save dialog. */
export function revealTarget(paths: UserPaths, raw: unknown): string {
  const p = absPath(raw, "path");
  paths.checkWrite(p);
  return p;
}
