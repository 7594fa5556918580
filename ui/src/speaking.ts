// Who is speaking, for screen readers. Levels arrive several times a second and the
// speaking flags flicker between words; announcing each change would drown the room, so
// a person counts as speaking until quiet for a while, and the sentence is looked at
// only every so often and spoken only when it changed.
import { speakingSentence } from "./format";

/** Someone in the room whose voice the node reports. */
export interface Voice {
  key: string;
  name: string;
}

export interface AnnouncerOptions {
  /** How long a person still counts as speaking after their last speaking report (ms). */
  hold?: number;
  /** The least time between two looks at who speaks, so between two announcements (ms). */
  every?: number;
  now?: () => number;
}

export class SpeakingAnnouncer {
  private readonly heard = new Map<string, { name: string; at: number }>();
  private said = "";
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly hold: number;
  private readonly every: number;
  private readonly now: () => number;

  /** `say` gets each new sentence (and "" on leaving the room, to clear what was said). */
  constructor(
    private readonly say: (text: string) => void,
    options: AnnouncerOptions = {},
  ) {
    this.hold = options.hold ?? 1500;
    this.every = options.every ?? 1500;
    this.now = options.now ?? (() => Date.now());
  }

  /**
   * Who speaks now; `null` outside a room. Called on every redraw: it only notes who
   * was heard and when; the sentence comes from a timer.
   */
  update(speaking: Voice[] | null): void {
    if (speaking === null) {
      this.stop();
      this.heard.clear();
      if (this.said) this.say("");
      this.said = "";
      return;
    }
    const at = this.now();
    for (const v of speaking) this.heard.set(v.key, { name: v.name, at });
    if (speaking.length) this.schedule();
  }

  /** Cancels the pending look (the app is stopping, or left the room). */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.look();
    }, this.every);
  }

  private look(): void {
    const now = this.now();
    for (const [key, h] of this.heard) if (now - h.at >= this.hold) this.heard.delete(key);
    // Sorted, so the sentence depends on who speaks, not on who started first.
    const names = [...this.heard.values()].map((h) => h.name).sort((a, b) => a.localeCompare(b));
    // Entering a room nobody speaks in is not news: silence is said only after speech.
    const text = names.length || this.said ? speakingSentence(names) : "";
    if (text !== this.said) {
      this.said = text;
      this.say(text);
    }
    if (this.heard.size) this.schedule();
  }
}
