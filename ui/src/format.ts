// Small pure helpers the view uses: dates, durations, safety numbers, link quality.
import type { HistoryParticipant, HistoryRoom, LinkInfo, Role } from "./api";

/** A 60-digit safety number as 12 groups of 5 digits (anything but digits is ignored). */
export function safetyGroups(n: string): string[] {
  const digits = n.replace(/\D/g, "");
  const groups: string[] = [];
  for (let i = 0; i < digits.length; i += 5) groups.push(digits.slice(i, i + 5));
  return groups;
}

/**
 * The room safety code in its groups: five groups of four words, separated by " / "
 * (a code without separators is one group).
 */
export function safetyCodeGroups(code: string): string[] {
  return code.split(" / ").map((g) => g.trim()).filter((g) => g.length > 0);
}

/** "1 h 05 min", "12 min", "45 s", or "ongoing" while the room has not ended. */
export function duration(room: Pick<HistoryRoom, "started_at" | "ended_at">): string {
  if (room.ended_at == null) return "ongoing";
  const s = Math.max(0, Math.round((room.ended_at - room.started_at) / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

/** A date the way a person reads it: "Today, 14:05", "Yesterday, 09:12", "3 Mar 2026, 18:00". */
export function when(ms: number, now: number = Date.now()): string {
  const d = new Date(ms);
  const time = d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  const day = (x: Date) => new Date(x.getFullYear(), x.getMonth(), x.getDate()).getTime();
  const diff = Math.round((day(new Date(now)) - day(d)) / 86_400_000);
  if (diff === 0) return `Today, ${time}`;
  if (diff === 1) return `Yesterday, ${time}`;
  return `${d.toLocaleDateString(undefined, { day: "numeric", month: "short", year: "numeric" })}, ${time}`;
}

/** The names of everyone who was there, each person once (two people may share a
 *  name), in order of arrival. */
export function whoWasThere(ps: HistoryParticipant[]): string[] {
  return participants(ps).map((p) => p.name);
}

/** Each person once (they may have left and come back), with the highest role they held. */
export function participants(ps: HistoryParticipant[]): HistoryParticipant[] {
  const rank: Record<Role, number> = { host: 3, moderator: 2, speaker: 1, listener: 0 };
  const by = new Map<string, HistoryParticipant>();
  for (const p of [...ps].sort((a, b) => a.joined_at - b.joined_at)) {
    const o = by.get(p.key);
    if (!o) by.set(p.key, { ...p });
    else {
      if (rank[p.role] > rank[o.role]) o.role = p.role;
      o.left_at = p.left_at == null || o.left_at == null ? null : Math.max(o.left_at, p.left_at);
    }
  }
  return [...by.values()];
}

export type Quality = "good" | "fair" | "poor" | "down" | "unknown";

/** Link quality from round-trip time and audio loss: what the three-bar indicator shows. */
export function linkQuality(l: LinkInfo | undefined): { level: Quality; bars: number; label: string } {
  if (!l) return { level: "unknown", bars: 0, label: "Link quality: measuring" };
  if (!l.up) return { level: "down", bars: 0, label: "Link quality: no connection" };
  const total = l.audio_received + l.audio_lost;
  // The worse direction: what we lose of their audio, or what they report losing of ours.
  const loss = Math.max(total > 0 ? l.audio_lost / total : 0, (l.reported_loss_permille ?? 0) / 1000);
  const pct = `${(loss * 100).toFixed(loss < 0.1 ? 1 : 0)}% loss`;
  const rtt = l.rtt_ms == null ? "" : `${Math.round(l.rtt_ms)} ms, `;
  const detail = `${rtt}${pct}`;
  if (l.rtt_ms == null && total === 0) return { level: "unknown", bars: 0, label: "Link quality: measuring" };
  const rttMs = l.rtt_ms ?? 0;
  if (rttMs < 150 && loss < 0.02) return { level: "good", bars: 3, label: `Link quality: good (${detail})` };
  if (rttMs < 300 && loss < 0.08) return { level: "fair", bars: 2, label: `Link quality: fair (${detail})` };
  return { level: "poor", bars: 1, label: `Link quality: poor (${detail})` };
}

/** How a member's audio travels, in words: "direct", "relayed via Ada", or "" while no
 * session is up. `nameOf` turns the relaying member's key into a display name. */
export function pathLabel(l: LinkInfo | undefined, nameOf: (key: string) => string | undefined): string {
  if (!l || !l.up || l.path == null) return "";
  if (l.path === "direct") return "direct";
  const via = l.via == null ? undefined : nameOf(l.via);
  return `relayed via ${via ?? "another member"}`;
}

/** A microphone level in dBFS as a 0–100 meter value (−60 dBFS and below is empty). */
export function meterPercent(dbfs: number): number {
  if (!Number.isFinite(dbfs)) return 0;
  return Math.round(Math.min(100, Math.max(0, ((dbfs + 60) / 60) * 100)));
}

/** A KeyboardEvent.code as a person reads it: "KeyT" → "T", "Space" → "Space". */
export function keyLabel(code: string): string {
  if (/^Key[A-Z]$/.test(code)) return code.slice(3);
  if (/^Digit\d$/.test(code)) return code.slice(5);
  if (/^Numpad\d$/.test(code)) return `Numpad ${code.slice(6)}`;
  const names: Record<string, string> = {
    Backquote: "`", Minus: "-", Equal: "=", BracketLeft: "[", BracketRight: "]", Backslash: "\\",
    Semicolon: ";", Quote: "'", Comma: ",", Period: ".", Slash: "/", CapsLock: "Caps Lock",
    ControlLeft: "Left Ctrl", ControlRight: "Right Ctrl", ShiftLeft: "Left Shift", ShiftRight: "Right Shift",
    AltLeft: "Left Alt", AltRight: "Right Alt", MetaLeft: "Left Meta", MetaRight: "Right Meta",
  };
  return names[code] ?? code;
}

/**
 * Who is speaking, as one sentence for screen readers: "Ada is speaking", "Ada and Bo are
 * speaking", "Ada, Bo and Cy are speaking", "No one is speaking". Past three names the
 * rest are counted, so a busy stage stays short to listen to.
 */
export function speakingSentence(names: string[]): string {
  if (!names.length) return "No one is speaking";
  if (names.length === 1) return `${names[0]} is speaking`;
  const shown = names.length > 3 ? [...names.slice(0, 2), `${names.length - 2} others`] : names;
  return `${shown.slice(0, -1).join(", ")} and ${shown.at(-1)} are speaking`;
}
