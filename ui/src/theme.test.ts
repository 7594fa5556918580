import { describe, expect, it } from "vitest";
import { ThemeController, resolveTheme } from "./theme";

/** A prefers-color-scheme query whose answer the test flips. */
function fakeMedia(dark: boolean) {
  const listeners: (() => void)[] = [];
  const mq = {
    matches: dark,
    addEventListener: (_: "change", f: () => void) => listeners.push(f),
    flip(to: boolean) {
      mq.matches = to;
      for (const f of listeners) f();
    },
  };
  return mq;
}

describe("theme", () => {
  it("an explicit theme wins over the system's", () => {
    expect(resolveTheme("light", true)).toBe("light");
    expect(resolveTheme("dark", false)).toBe("dark");
  });

  it("system resolves through prefers-color-scheme", () => {
    expect(resolveTheme("system", true)).toBe("dark");
    expect(resolveTheme("system", false)).toBe("light");
  });

  it("system follows the OS live, and stops following once a theme is chosen", () => {
    const root = document.createElement("html");
    const mq = fakeMedia(false);
    let asked = "";
    const t = new ThemeController(root, (q) => {
      asked = q;
      return mq;
    });
    expect(asked).toBe("(prefers-color-scheme: dark)");
    t.set("system");
    expect(root.dataset.theme).toBe("light");
    mq.flip(true);
    expect(root.dataset.theme).toBe("dark");
    t.set("light");
    mq.flip(true);
    expect(root.dataset.theme).toBe("light");
    t.set("dark");
    mq.flip(false);
    expect(root.dataset.theme).toBe("dark");
  });

  it("without matchMedia, system falls back to light", () => {
    const root = document.createElement("html");
    new ThemeController(root, undefined).set("system");
    expect(root.dataset.theme).toBe("light");
  });
});
