// Push-to-talk: with a key set, the microphone is muted unless that key is held.
export interface PttDeps {
  /** The KeyboardEvent.code chosen in settings, or null when push-to-talk is off. */
  key: () => string | null;
  /** Whether we are on a stage in a room (only then is there a microphone to open). */
  active: () => boolean;
  setMuted: (muted: boolean) => Promise<void> | void;
}

export class PushToTalk {
  private held = false;

  constructor(private readonly deps: PttDeps) {}

  get isHeld(): boolean {
    return this.held;
  }

  /** Returns true when the event was the push-to-talk key (and was handled). */
  keydown(ev: Pick<KeyboardEvent, "code" | "repeat">): boolean {
    const key = this.deps.key();
    if (!key || ev.code !== key) return false;
    if (ev.repeat || this.held) return true;
    this.held = true;
    if (this.deps.active()) void this.deps.setMuted(false);
    return true;
  }

  keyup(ev: Pick<KeyboardEvent, "code">): boolean {
    const key = this.deps.key();
    if (!key || ev.code !== key) return false;
    this.release();
    return true;
  }

  /** The window lost focus: a key released elsewhere never sends keyup here. */
  blur(): void {
    this.release();
  }

  private release(): void {
    if (!this.held) return;
    this.held = false;
    if (this.deps.active()) void this.deps.setMuted(true);
  }
}
