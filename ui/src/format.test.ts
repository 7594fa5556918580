import { describe, expect, it } from "vitest";
import type { LinkInfo } from "./api";
import { duration, keyLabel, linkQuality, meterPercent, pathLabel, safetyCodeGroups, safetyGroups, speakingSentence, when, whoWasThere } from "./format";

const link = (over: Partial<LinkInfo>): LinkInfo => ({ key: "bb", name: "Bo", rtt_ms: 40, audio_received: 1000, audio_lost: 0, jitter_buffer_ms: 40, reported_loss_permille: null, up: true, path: "direct", via: null, ...over });

describe("safety numbers", () => {
  it("a 60-digit safety number reads as 12 groups of 5, in order", () => {
    const n = "012345678901234567890123456789012345678901234567890123456789";
    const g = safetyGroups(n);
    expect(g).toHaveLength(12);
    expect(g.every((x) => /^\d{5}$/.test(x))).toBe(true);
    expect(g[0]).toBe("01234");
    expect(g[11]).toBe("56789");
    expect(g.join("")).toBe(n);
  });

  it("spaces in the number do not shift the groups", () => {
    expect(safetyGroups("12345 67890")).toEqual(["12345", "67890"]);
  });
});

describe("room safety code", () => {
  it("a 20-word code reads as five groups of four words, in order", () => {
    const code = "acid acorn acre acts / afar affix aged agent / agile aging agony ahead / aim ajar alarm alias / alibi alien alike alive";
    const g = safetyCodeGroups(code);
    expect(g).toHaveLength(5);
    expect(g.every((x) => x.split(" ").length === 4)).toBe(true);
    expect(g[0]).toBe("acid acorn acre acts");
    expect(g.join(" / ")).toBe(code);
  });
});

describe("history formatting", () => {
  it("duration is ended minus started, and a room without an end is ongoing", () => {
    expect(duration({ started_at: 0, ended_at: 45_000 })).toBe("45 s");
    expect(duration({ started_at: 0, ended_at: 12 * 60_000 })).toBe("12 min");
    expect(duration({ started_at: 1000, ended_at: 1000 + 65 * 60_000 })).toBe("1 h 05 min");
    expect(duration({ started_at: 0, ended_at: null })).toBe("ongoing");
  });

  it("who was there lists each person once, in order of arrival", () => {
    const p = (key: string, name: string, joined_at: number) => ({ key, name, role: "listener" as const, joined_at, left_at: null });
    expect(whoWasThere([p("b", "Bo", 2), p("a", "Ada", 1), p("b", "Bo", 3)])).toEqual(["Ada", "Bo"]);
    // Two people called Alex are two people.
    expect(whoWasThere([p("x", "Alex", 1), p("y", "Alex", 2)])).toEqual(["Alex", "Alex"]);
  });

  it("dates say today and yesterday", () => {
    const now = new Date(2026, 10, 27, 12, 0).getTime();
    expect(when(new Date(2026, 10, 27, 9, 5).getTime(), now)).toMatch(/^Today, /);
    expect(when(new Date(2026, 10, 26, 23, 0).getTime(), now)).toMatch(/^Yesterday, /);
    expect(when(new Date(2026, 2, 3, 18, 0).getTime(), now)).toMatch(/2026/);
  });
});

describe("link quality", () => {
  it("short round trips without loss are good, three bars", () => {
    expect(linkQuality(link({}))).toMatchObject({ level: "good", bars: 3 });
  });
  it("a slower link or some loss is fair, more is poor", () => {
    expect(linkQuality(link({ rtt_ms: 200 })).level).toBe("fair");
    expect(linkQuality(link({ audio_lost: 50, audio_received: 950 })).level).toBe("fair");
    expect(linkQuality(link({ rtt_ms: 500 })).level).toBe("poor");
    expect(linkQuality(link({ audio_lost: 200, audio_received: 800 }))).toMatchObject({ level: "poor", bars: 1 });
    // Loss the other side reports of our audio counts too.
    expect(linkQuality(link({ reported_loss_permille: 120 }))).toMatchObject({ level: "poor", bars: 1 });
    expect(linkQuality(link({ reported_loss_permille: 30 })).label).toContain("3.0% loss");
  });
  it("a link that is down shows no bars and says so", () => {
    const q = linkQuality(link({ up: false }));
    expect(q).toMatchObject({ level: "down", bars: 0 });
    expect(q.label).toContain("no connection");
  });
  it("the label carries the numbers for the tooltip", () => {
    expect(linkQuality(link({ rtt_ms: 42.4, audio_lost: 1, audio_received: 999 })).label).toBe("Link quality: good (42 ms, 0.1% loss)");
  });
});

describe("link path", () => {
  const names: Record<string, string> = { aa: "Ada" };
  const nameOf = (k: string) => names[k];
  it("says direct, or which member relays", () => {
    expect(pathLabel(link({}), nameOf)).toBe("direct");
    expect(pathLabel(link({ path: "relayed", via: "aa" }), nameOf)).toBe("relayed via Ada");
  });
  it("falls back when the relaying member is not known, and says nothing while down", () => {
    expect(pathLabel(link({ path: "relayed", via: "zz" }), nameOf)).toBe("relayed via another member");
    expect(pathLabel(link({ up: false }), nameOf)).toBe("");
    expect(pathLabel(link({ path: null }), nameOf)).toBe("");
    expect(pathLabel(undefined, nameOf)).toBe("");
  });
});

describe("small readings", () => {
  it("the mic meter maps -60..0 dBFS onto 0..100", () => {
    expect(meterPercent(-100)).toBe(0);
    expect(meterPercent(-30)).toBe(50);
    expect(meterPercent(3)).toBe(100);
    expect(meterPercent(Number.NEGATIVE_INFINITY)).toBe(0);
  });
  it("key codes read as people name keys", () => {
    expect(keyLabel("KeyT")).toBe("T");
    expect(keyLabel("Space")).toBe("Space");
    expect(keyLabel("Backquote")).toBe("`");
    expect(keyLabel("ControlRight")).toBe("Right Ctrl");
  });
  it("who is speaking reads as one short sentence", () => {
    expect(speakingSentence([])).toBe("No one is speaking");
    expect(speakingSentence(["Ada"])).toBe("Ada is speaking");
    expect(speakingSentence(["Ada", "Bo"])).toBe("Ada and Bo are speaking");
    expect(speakingSentence(["Ada", "Bo", "Cy"])).toBe("Ada, Bo and Cy are speaking");
    expect(speakingSentence(["Ada", "Bo", "Cy", "Di", "Ed"])).toBe("Ada, Bo and 3 others are speaking");
  });
});
