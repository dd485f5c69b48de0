// Shared set-up for the browser tests: real CIFAR-10 subsets copied from the fixtures, the loopback host
// started exactly as `npm run web` starts it, Debian's Chromium driven by Playwright, and the
// in-app picker operated like a user would.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, readdir, readFile, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright";

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const FIXTURES = path.resolve(REPO, "../shared/fixtures");
export const MODEL = path.join(FIXTURES, "models/resnet20-cifar10.onnx");
export const MOBILENET = path.join(FIXTURES, "models/mobilenet_v1_0.75_224-imagenet.onnx");
export const IMAGENET = path.join(FIXTURES, "imagenet-val-1300");
export const CHROMIUM = "/usr/bin/chromium";
export const SCREENS = path.join(REPO, "test-results/screens");

/** Copies the first `perClass` images of every class folder, keeping the class sub-folders. */
export async function copySubset(from: string, to: string, perClass: number): Promise<number> {
  let n = 0;
  for (const cls of (await readdir(from, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort()) {
    await mkdir(path.join(to, cls), { recursive: true });
    const files = (await readdir(path.join(from, cls))).sort().slice(0, perClass);
    for (const f of files) await copyFile(path.join(from, cls, f), path.join(to, cls, f));
    n += files.length;
  }
  return n;
}

/**
 * A folder of symbolic links to files `from..to` (in sorted order) of the ImageNet validation subset, with
 * their own labels.txt (numeric class indices, as the fixture's) when `labels` is set: small sets, disjoint
 * by construction, without copying megabytes of JPEGs.
 */
export async function linkImagenet(to: string, from: number, count: number, labels: boolean): Promise<number> {
  await mkdir(to, { recursive: true });
  const lines = (await readFile(path.join(IMAGENET, "labels.txt"), "utf8")).split("\n").filter(Boolean);
  const picked = lines.slice(from, from + count);
  for (const line of picked) {
    const file = line.split(" ")[0];
    await symlink(path.join(IMAGENET, file), path.join(to, file));
  }
  if (labels) await writeFile(path.join(to, "labels.txt"), picked.join("\n") + "\n");
  return picked.length;
}

export interface WebHost {
  url: string;
  lines: string[];
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts `node --import tsx src-main/host/main.ts --root ROOT` and waits for its one printed line.
 * `prefix` runs it through another command, e.g. setpriv to drop root.
 */
export async function startWebHost(root: string, prefix: string[] = []): Promise<WebHost> {
  const argv = [process.execPath, "--import", "tsx", "src-main/host/main.ts", "--root", root];
  const [command, ...args] = [...prefix, ...argv];
  const child = spawn(command, args, { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  let stderr = "";
  child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`host did not start in 120 s: ${stderr}`)), 120_000);
    child.stdout?.on("data", (c: Buffer) => {
      lines.push(...c.toString().split("\n").filter(Boolean));
      const m = /^Nibble is running at (http:\/\/127\.0\.0\.1:\d+\/\?token=\S+)$/.exec(lines[0] ?? "");
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on("exit", (code) => reject(new Error(`host exited with ${code}: ${stderr}`)));
  });
  return {
    url,
    lines,
    child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

export function chromiumMissing(): string | false {
  return existsSync(CHROMIUM) ? false : `Debian's Chromium is not installed at ${CHROMIUM} (apt-get install -y chromium).`;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
  });
}

/** Page errors, CSP violations and failed requests, collected so a test can assert there were none. */
export function watchPage(page: Page): string[] {
  const problems: string[] = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !/the server responded with a status of (400|403|500)/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  return problems;
}

export async function screenshot(page: Page, name: string): Promise<string> {
  const file = path.join(SCREENS, `${name}.png`);
  await mkdir(path.dirname(file), { recursive: true });
  // Sticky parts are placed for the current scroll position: capture from the top.
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** A capture name per variant: the screen as set up, 1024 x 700, and the dark theme. */
export async function screenshots(page: Page, name: string): Promise<void> {
  const size = page.viewportSize();
  await screenshot(page, name);
  await page.setViewportSize({ width: 1024, height: 700 });
  await settle(page);
  await screenshot(page, `${name}-1024`);
  if (size) await page.setViewportSize(size);
  await page.emulateMedia({ colorScheme: "dark" });
  await settle(page);
  await screenshot(page, `${name}-dark`);
  await page.emulateMedia({ colorScheme: "light" });
  await settle(page);
}

/** Charts redraw on resize and on a theme change: wait two frames. */
async function settle(page: Page): Promise<void> {
  await page.evaluate("new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))");
}

/**
 * Records, in the page, every overall percentage and stage label the Run screen shows while a job runs
 * (a MutationObserver, so no value between two polls is missed). Read it back with readProgress.
 */
export async function recordProgress(page: Page): Promise<void> {
  // A string, not a function: the TypeScript loader wraps named functions in a helper the page does not have.
  await page.evaluate(`(() => {
    const w = window;
    w.__progress = { percents: [], stages: [], feet: [] };
    const read = () => {
      const overall = document.querySelector('[data-testid="run-overall"]');
      if (overall) {
        const p = Number(overall.getAttribute("data-percent"));
        if (w.__progress.percents.at(-1) !== p) w.__progress.percents.push(p);
      }
      for (const li of document.querySelectorAll('[data-testid="progress-stages"] li')) {
        const label = li.querySelector(".label")?.textContent?.trim() ?? "";
        if (label && !w.__progress.stages.includes(label)) w.__progress.stages.push(label);
        const foot = li.querySelector(".foot")?.textContent?.trim() ?? "";
        if (li.classList.contains("active") && foot && !w.__progress.feet.includes(foot)) w.__progress.feet.push(foot);
      }
    };
    if (w.__progressObserver) w.__progressObserver.disconnect();
    w.__progressObserver = new MutationObserver(read);
    w.__progressObserver.observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
  })()`);
}

export function readProgress(page: Page): Promise<{ percents: number[]; stages: string[]; feet: string[] }> {
  return page.evaluate("window.__progress") as Promise<{ percents: number[]; stages: string[]; feet: string[] }>;
}

async function pickerGo(page: Page, dir: string): Promise<void> {
  const picker = page.getByTestId("picker");
  await picker.waitFor({ state: "visible" });
  const input = page.getByTestId("picker-path");
  await input.fill(dir);
  await input.press("Enter");
  await page.waitForFunction((d) => (document.querySelector('[data-testid="picker-path"]') as HTMLInputElement | null)?.value === d, dir);
  await page.locator('[data-testid="picker-entries"][aria-busy="false"]').waitFor();
}

/** In the open picker, choose a file. */
export async function pickFile(page: Page, file: string): Promise<void> {
  await pickerGo(page, path.dirname(file));
  await page.locator(`[data-testid="picker-entries"] [data-name="${path.basename(file)}"]`).click();
  await page.getByTestId("picker").waitFor({ state: "hidden" });
}

/** In the open picker, choose a folder. */
export async function pickFolder(page: Page, dir: string): Promise<void> {
  await pickerGo(page, dir);
  await page.getByTestId("picker-use-folder").click();
  await page.getByTestId("picker").waitFor({ state: "hidden" });
}

/** In the open picker, save as `file`. */
export async function pickSave(page: Page, file: string): Promise<void> {
  await pickerGo(page, path.dirname(file));
  await page.getByTestId("picker-filename").fill(path.basename(file));
  await page.getByTestId("picker-save").click();
  await page.getByTestId("picker").waitFor({ state: "hidden" });
}

/** "91.40%" -> 91.4 */
export function percentOf(text: string | null): number {
  const m = /(-?\d+(?:\.\d+)?)%/.exec(text ?? "");
  if (!m) throw new Error(`no percentage in ${JSON.stringify(text)}`);
  return Number(m[1]);
}
