// What the renderer can ask of its host (Electron main or the loopback web host), beyond the engine API.
// The names here are the one place both hosts and the renderer agree on; every payload that crosses is
// checked by shared/validate.ts on the receiving side.
import type { JobEvent, NibbleApi } from "./engine-api.ts";

/** Engine API methods, each taking exactly one JSON argument. */
export const API_METHODS = ["inspect", "previewData", "startJob", "cancelJob", "exportModel", "exportReport"] as const;
export type ApiMethod = (typeof API_METHODS)[number];

export function isApiMethod(name: string): name is ApiMethod {
  return (API_METHODS as readonly string[]).includes(name);
}

/** Electron IPC channel names. */
export const IPC = {
  call: (method: ApiMethod) => `nibble:api:${method}`,
  event: "nibble:event",
  command: "nibble:command",
  dialog: "nibble:dialog",
  drop: "nibble:drop",
  reveal: "nibble:reveal",
} as const;

/** Loopback web host routes (all under the same origin, all behind the token). */
export const HTTP = {
  call: (method: ApiMethod) => `/api/call/${method}`,
  events: "/api/events",
  browse: "/api/browse",
  info: "/api/info",
  download: "/api/download",
  tokenHeader: "x-nibble-token",
  tokenCookie: "nibble_token",
  /** Largest JSON request body the host accepts. Requests are small; paths and settings only. */
  maxBodyBytes: 256 * 1024,
} as const;

/** What a native dialog or the in-app picker is choosing. */
export type PickKind = "model" | "folder" | "save";

export interface DialogRequest {
  kind: PickKind;
  title: string;
  /** save only: suggested full path */
  defaultPath?: string;
  /** save only: the extension the file must get, e.g. "onnx" */
  extension?: string;
}

export interface BrowseEntry {
  name: string;
  path: string;
  kind: "dir" | "file";
  bytes: number | null;
}

export interface BrowseResult {
  dir: string;
  parent: string | null;
  roots: string[];
  entries: BrowseEntry[];
}

export interface HostInfo {
  roots: string[];
  /** where the picker starts */
  home: string;
}

/** Commands the desktop shell (menu, drag and drop) sends to the renderer. */
export type ShellCommand =
  | { type: "open-model"; path: string }
  | { type: "open-folder"; path: string }
  | { type: "export" };

/** What the Electron preload exposes as window.nibble. */
export interface DesktopBridge extends NibbleApi {
  onEvent(listener: (e: JobEvent) => void): () => void;
  onCommand(listener: (c: ShellCommand) => void): () => void;
  /** Native dialog; null when the user cancelled. */
  choose(req: DialogRequest): Promise<string | null>;
  /** Path of a dropped file or folder, registered with the main process as user-chosen. */
  registerDrop(file: File): Promise<string | null>;
  /** Show a written file in the system's file manager. */
  reveal(path: string): Promise<void>;
}
