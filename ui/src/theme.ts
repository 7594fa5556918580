// Theme: the UI sets <html data-theme="light|dark"> and every colour hangs off it.
// "system" follows prefers-color-scheme, live.
import type { Theme } from "./api";

export type Resolved = "light" | "dark";

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
