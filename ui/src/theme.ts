// Theme: the UI sets <html data-theme="light|dark"> and every colour hangs off it.
// "system" follows prefers-color-scheme, live.
import type { Theme } from "./api";

export type Resolved = "light" | "dark";

const STORE = "salon.theme";

export function resolveTheme(theme: Theme, systemDark: boolean): Resolved {
  if (theme === "light" || theme === "dark") return theme;
  return systemDark ? "dark" : "light";
}

interface MediaList { matches: boolean; addEventListener(type: "change", f: () => void): void }

/** Keeps `root.dataset.theme` in step with the chosen theme and, for "system", the OS. */
export class ThemeController {
  private theme: Theme = "system";
  private readonly mq: MediaList | null;

  constructor(
    private readonly root: HTMLElement,
    matchMedia: ((q: string) => MediaList) | undefined,
  ) {
    this.mq = matchMedia ? matchMedia("(prefers-color-scheme: dark)") : null;
    this.mq?.addEventListener("change", () => this.apply());
  }

  /** The theme chosen last time, so the unlock screen already wears it (not a secret). */
  static remembered(win: Window): Theme {
    try {
      const t = win.localStorage?.getItem(STORE);
      return t === "light" || t === "dark" ? t : "system";
    } catch {
      return "system";
    }
  }

  static remember(win: Window, theme: Theme): void {
    try {
      win.localStorage?.setItem(STORE, theme);
    } catch {
      // Storage may be unavailable; the settings still apply at unlock.
    }
  }

  set(theme: Theme): Resolved {
    this.theme = theme;
    return this.apply();
  }

  get current(): Theme {
    return this.theme;
  }

  private apply(): Resolved {
    const r = resolveTheme(this.theme, this.mq?.matches ?? false);
    this.root.dataset.theme = r;
    return r;
  }
}
