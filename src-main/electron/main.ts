// Nibble's desktop shell: one sandboxed window onto the engine service. The page is treated as
// untrusted: it runs with context isolation and the sandbox, talks only through the preload's narrow
// API, and every payload and path it sends is checked here (shared/validate.ts, UserPaths).
import { app, BrowserWindow, dialog, ipcMain, Menu, protocol, session, shell, type IpcMainInvokeEvent, type MenuItemConstructorOptions } from "electron";
import { readFile, realpath } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { API_METHODS, IPC, type ApiMethod, type DialogRequest, type ShellCommand } from "../../shared/ipc.ts";
import { dialogRequest } from "../../shared/validate.ts";
import { createEngineService } from "../service/index.ts";
import {
  acceptDrop,
  allowNavigation,
  allowPermission,
  allowRequest,
  APP_ORIGIN,
  APP_SCHEME,
  assetHeaders,
  authorizeCall,
  resolveAppRequest,
  revealTarget,
  trustedSender,
  windowOpenAction,
} from "./policy.ts";
import { addRecent, loadRecent, saveRecent } from "./recent.ts";
import { UserPaths } from "./user-paths.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
/** the built renderer: out/electron/ -> src-renderer/dist (also inside the packaged app) */
const RENDERER = path.resolve(here, "../../src-renderer/dist");
protocol.registerSchemesAsPrivileged([{ scheme: APP_SCHEME, privileges: { standard: true, secure: true } }]);

const service = createEngineService();
const paths = new UserPaths();
let win: BrowserWindow | null = null;
let recent: string[] = [];
const recentFile = () => path.join(app.getPath("userData"), "recent-models.json");

/** Serves the renderer's files and nothing else; no path can leave RENDERER. */
async function serveRenderer(request: Request): Promise<Response> {
  const file = await resolveAppRequest(await realpath(RENDERER), request.url);
  if (!file) return new Response("Not found", { status: 404 });
  return new Response(await readFile(file), { headers: assetHeaders(file) });
}

/** Only the main frame of our own window, showing our own page, may call the main process. */
function checkSender(e: IpcMainInvokeEvent): void {
  const frame = e.senderFrame;
  if (!trustedSender({ ourWindow: win !== null && e.sender === win.webContents, topFrame: frame !== null && frame.parent === null, url: frame?.url })) {
    throw new Error("Refused: request from an unknown frame.");
  }
}

function send(c: ShellCommand): void {
  win?.webContents.send(IPC.command, c);
}

async function rememberModel(p: string): Promise<void> {
  recent = await addRecent(recentFile(), recent, p);
  app.addRecentDocument(p);
  buildMenu();
}

async function clearRecent(): Promise<void> {
  recent = [];
  app.clearRecentDocuments();
  await saveRecent(recentFile(), recent);
  buildMenu();
}

async function openModelFromShell(p: string): Promise<void> {
  paths.allowRead(p);
  await rememberModel(p);
  send({ type: "open-model", path: p });
}

async function choose(req: DialogRequest): Promise<string | null> {
  if (!win) return null;
  if (req.kind === "save") {
    const ext = req.extension;
    const r = await dialog.showSaveDialog(win, {
      title: req.title,
      defaultPath: req.defaultPath,
      filters: ext ? [{ name: ext.toUpperCase(), extensions: [ext] }] : [],
    });
    return r.canceled || !r.filePath ? null : paths.allowWrite(r.filePath);
  }
  const r = await dialog.showOpenDialog(win, {
    title: req.title,
    properties: req.kind === "folder" ? ["openDirectory"] : ["openFile"],
    filters: req.kind === "model" ? [{ name: "ONNX models", extensions: ["onnx"] }, { name: "All files", extensions: ["*"] }] : [],
  });
  const p = r.canceled ? undefined : r.filePaths[0];
  if (!p) return null;
  paths.allowRead(p);
  if (req.kind === "model") await rememberModel(p);
  return p;
}

function registerIpc(): void {
  for (const method of API_METHODS) {
    ipcMain.handle(IPC.call(method), async (e, raw: unknown) => {
      checkSender(e);
      const arg = authorizeCall(paths, method, raw);
      return (service[method as ApiMethod] as (a: unknown) => Promise<unknown>).call(service, arg);
    });
  }
  ipcMain.handle(IPC.dialog, async (e, raw: unknown) => {
    checkSender(e);
    return choose(dialogRequest(raw));
  });
  ipcMain.handle(IPC.drop, async (e, raw: unknown) => {
    checkSender(e);
    const dropped = await acceptDrop(paths, raw);
    if (dropped?.kind === "model") await rememberModel(dropped.path);
    return dropped?.path ?? null;
  });
  ipcMain.handle(IPC.reveal, async (e, raw: unknown) => {
    checkSender(e);
    shell.showItemInFolder(revealTarget(paths, raw));
  });
  service.onEvent((ev) => win?.webContents.send(IPC.event, ev));
}

function buildMenu(): void {
  const isMac = process.platform === "darwin";
  const openModel = async () => {
    const p = win ? await choose({ kind: "model", title: "Open an ONNX model" }) : null;
    if (p) send({ type: "open-model", path: p });
  };
  const template: MenuItemConstructorOptions[] = [
    ...(isMac ? [{ role: "appMenu" as const }] : []),
    {
      label: "&File",
      submenu: [
        { label: "Open Model…", accelerator: "CmdOrCtrl+O", click: () => void openModel() },
        {
          label: "Open Recent",
          submenu: recent.length
            ? [
                ...recent.map((p) => ({ label: p, click: () => void openModelFromShell(p) })),
                { type: "separator" as const },
                { label: "Clear Menu", click: () => void clearRecent() },
              ]
            : [{ label: "No recent models", enabled: false }],
        },
        { type: "separator" },
        { label: "Export…", accelerator: "CmdOrCtrl+E", click: () => send({ type: "export" }) },
        { type: "separator" },
        isMac ? { role: "close" } : { role: "quit", label: "Quit" },
      ],
    },
    { role: "editMenu" },
    {
      label: "&View",
      submenu: [{ role: "resetZoom" }, { role: "zoomIn" }, { role: "zoomOut" }, { type: "separator" }, { role: "togglefullscreen" }, ...(app.isPackaged ? [] : [{ role: "toggleDevTools" as const }])],
    },
    { role: "windowMenu" },
  ];
  Menu.setApplicationMenu(Menu.buildFromTemplate(template));
}

function lockDownSession(): void {
  const s = session.defaultSession;
  // No network, ever: the page may load its own files and inline data: images, nothing else (policy.ts).
  s.webRequest.onBeforeRequest((details, callback) => callback({ cancel: !allowRequest(details.url, { devtools: !app.isPackaged }) }));
  s.setPermissionRequestHandler((_wc, permission, callback) => callback(allowPermission(permission)));
  s.setPermissionCheckHandler((_wc, permission) => allowPermission(permission));
}

function createWindow(): void {
  win = new BrowserWindow({
    width: 1360,
    height: 900,
    minWidth: 1024,
    minHeight: 680,
    title: "Nibble",
    show: false,
    webPreferences: {
      preload: path.join(here, "preload.cjs"),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
      spellcheck: false,
    },
  });
  win.once("ready-to-show", () => win?.show());
  win.on("closed", () => (win = null));
  void win.loadURL(`${APP_ORIGIN}/index.html`);
}

app.on("web-contents-created", (_e, contents) => {
  contents.setWindowOpenHandler((d) => windowOpenAction(d.url));
  // A file dropped outside the page's drop handling would navigate the window to it: never leave the app.
  contents.on("will-navigate", (e) => {
    if (!allowNavigation(e.url)) e.preventDefault();
  });
  contents.on("will-attach-webview", (e) => e.preventDefault());
});

app.on("window-all-closed", () => app.quit());
app.on("will-quit", () => void service.close());

// macOS: a model opened from Finder or the Dock.
app.on("open-file", (e, p) => {
  e.preventDefault();
  if (win && /\.onnx$/i.test(p)) void openModelFromShell(p);
});

await app.whenReady();
protocol.handle("app", serveRenderer);
lockDownSession();
recent = await loadRecent(recentFile());
registerIpc();
buildMenu();
createWindow();
