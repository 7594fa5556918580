// The controller: renders the state, turns clicks, forms and keys into commands, and
// folds node events back into the state.
import "./style.css";
import { api, errorCode, errorMessage, onNodeEvent, type Action } from "./api";
import { initial, me, reduce, type UiState } from "./state";
import { morph } from "./morph";
import { render, strength } from "./view";

let state: UiState = initial;
const root = document.getElementById("app") as HTMLElement;
const toasts = document.getElementById("toasts") as HTMLElement;

let lastHtml = "";

/** Identifies a field across re-renders. */
function fieldKey(e: Element): string {
  const f = e as HTMLInputElement;
  return f.id || `${f.closest("form")?.dataset.form ?? ""}:${f.name}`;
}

function set(next: UiState) {
  state = next;
  const html = render(state);
  // Events (levels, links) arrive several times a second: redraw only when something
  // visible changed, and keep what the user is typing and where the caret is.
  if (html !== lastHtml) {
    const fields = [...root.querySelectorAll<HTMLInputElement | HTMLTextAreaElement>("input, textarea")];
    const values = new Map(fields.map((f) => [fieldKey(f), f.value]));
    const active = document.activeElement as HTMLInputElement | null;
    const focused = active && root.contains(active) ? { key: fieldKey(active), start: active.selectionStart, end: active.selectionEnd } : null;
    morph(root, html);
    lastHtml = html;
    // Fields morph keeps are untouched; these restore any that had to be replaced.
    for (const f of root.querySelectorAll<HTMLInputElement | HTMLTextAreaElement>("input, textarea")) {
      const v = values.get(fieldKey(f));
      if (v !== undefined && f.type !== "submit" && f.value !== v) f.value = v;
      if (focused && fieldKey(f) === focused.key && document.activeElement !== f) {
        f.focus();
        if (focused.start !== null && "setSelectionRange" in f) f.setSelectionRange(focused.start, focused.end);
      }
    }
  }
  while (state.toasts.length) {
    const t = document.createElement("div");
    t.className = "toast";
    t.textContent = state.toasts[0];
    toasts.appendChild(t);
    setTimeout(() => t.remove(), 5000);
    state = { ...state, toasts: state.toasts.slice(1) };
  }
}

async function attempt(f: () => Promise<void>) {
  try {
    await f();
  } catch (e) {
    set({ ...state, error: errorMessage(e) });
    if (errorCode(e) === "wrong_passphrase") root.querySelector<HTMLInputElement>("input[name=passphrase]")?.focus();
  }
}

root.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const form = ev.target as HTMLFormElement;
  const data = Object.fromEntries(new FormData(form)) as Record<string, string>;
  switch (form.dataset.form) {
    case "create":
      if (data.passphrase !== data.confirm) return set({ ...state, error: "The passphrases differ" });
      // The profile is awaited before `state` is read: events that arrive meanwhile stay.
      return attempt(async () => {
        const profile = await api.createProfile(data.name, data.passphrase);
        set({ ...state, profile, screen: "home", error: undefined });
      });
    case "unlock":
      return attempt(async () => {
        const profile = await api.unlock(data.passphrase);
        set({ ...state, profile, screen: "home", error: undefined });
      });
    case "host":
      return attempt(async () => {
        const invite = await api.hostRoom(data.title);
        set({ ...state, invite, error: undefined });
      });
    case "join":
      return attempt(async () => {
        await api.joinRoom(data.invite.trim());
        set({ ...state, screen: "room", error: undefined });
      });
    case "chat":
      if (!data.text?.trim()) return;
      return attempt(async () => {
        await api.sendChat(data.text);
        // A redraw while sending replaces the form: empty the one on screen now.
        const field = root.querySelector<HTMLInputElement>("#chat-text");
        if (field?.value === data.text) field.value = "";
      });
  }
});

root.addEventListener("input", (ev) => {
  const el = ev.target as HTMLInputElement;
  if (el.dataset.strength !== undefined) {
    const hint = root.querySelector("#strength");
    if (hint) hint.textContent = el.value ? `Strength: ${strength(el.value)}` : "";
  }
});

async function act(action: string, el: HTMLElement) {
  const mine = me(state);
  switch (action) {
    case "mute":
      return api.setMuted(!mine?.muted);
    case "hand":
      return api.setHand(!mine?.hand_raised);
    case "leave":
      return api.leaveRoom();
    case "end":
      return api.endRoom();
    case "copy-invite":
      return navigator.clipboard?.writeText(state.invite ?? "");
    case "moderate":
      return api.moderate(el.dataset.target ?? "", el.dataset.op as Action);
  }
}

root.addEventListener("click", (ev) => {
  const el = (ev.target as HTMLElement).closest<HTMLElement>("[data-action]");
  if (el?.dataset.action) void attempt(() => act(el.dataset.action as string, el));
});

document.addEventListener("keydown", (ev) => {
  if (state.screen !== "room" || (ev.target as HTMLElement).closest("input, textarea")) return;
  if (ev.key === "m" || ev.key === "M") void attempt(() => act("mute", root));
  if (ev.key === "h" || ev.key === "H") void attempt(() => act("hand", root));
});

async function boot() {
  await onNodeEvent((e) => set(reduce(state, e)));
  const status = await api.profileStatus();
  set({ ...state, screen: status.unlocked ? "home" : status.exists ? "unlock" : "create" });
}

void boot();
