import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { SpeakingAnnouncer } from "./speaking";

const ada = { key: "aa", name: "Ada" };
const bo = { key: "bb", name: "Bo" };

describe("speaking announcements", () => {
  let said: string[];
  let a: SpeakingAnnouncer;
  beforeEach(() => {
    vi.useFakeTimers();
    said = [];
    a = new SpeakingAnnouncer((t) => said.push(t), { hold: 1500, every: 1500 });
  });
  afterEach(() => {
    a.stop();
    vi.useRealTimers();
  });

  /** Level reports every 100 ms for `ms`, with `who` speaking in each. */
  const levels = (ms: number, who: (t: number) => { key: string; name: string }[]) => {
    for (let t = 0; t < ms; t += 100) {
      a.update(who(t));
      vi.advanceTimersByTime(100);
    }
  };

  it("a room nobody speaks in says nothing", () => {
    levels(5000, () => []);
    expect(said).toEqual([]);
  });

  it("says who starts and when everyone stops, once each, through the gaps between words", () => {
    // Ada talks for 4 s with a 400 ms pause every second (the VAD flickers).
    levels(4000, (t) => (t % 1000 < 600 ? [ada] : []));
    expect(said).toEqual(["Ada is speaking"]);
    levels(4000, () => []);
    expect(said).toEqual(["Ada is speaking", "No one is speaking"]);
  });

  it("names everyone speaking together, whoever started first", () => {
    levels(2000, () => [bo]);
    levels(3000, () => [bo, ada]);
    expect(said).toEqual(["Bo is speaking", "Ada and Bo are speaking"]);
  });

  it("says nothing more often than every 1.5 s, however fast the set changes", () => {
    const flips: number[] = [];
    const b = new SpeakingAnnouncer(() => flips.push(Date.now()), { hold: 200, every: 1500 });
    // Ada and Bo take turns every second, and each change is noticed.
    for (let t = 0; t < 20_000; t += 100) {
      b.update(t % 2000 < 1000 ? [ada] : [bo]);
      vi.advanceTimersByTime(100);
    }
    b.stop();
    expect(flips.length).toBeGreaterThan(3);
    for (let i = 1; i < flips.length; i++) expect(flips[i] - flips[i - 1]).toBeGreaterThanOrEqual(1500);
  });

  it("leaving the room clears what was said and forgets who spoke", () => {
    levels(2000, () => [ada]);
    a.update(null);
    expect(said).toEqual(["Ada is speaking", ""]);
    levels(5000, () => []);
    expect(said).toEqual(["Ada is speaking", ""]);
  });
});
